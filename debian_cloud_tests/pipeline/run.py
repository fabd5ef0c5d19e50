"""The pipeline: build → boot under QEMU and run every suite → gate → publish only on *publish*.

Each step is the project's own command, so the pipeline proves nothing the steps would not: the
tests run in a fresh pytest process exactly as `pytest --provider=qemu` runs them, and the gate
is given the image's sha256 so that only results about these bytes can publish it.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..faibuild.driver import build
from ..faibuild.spec import BuildSpec
from ..gate.cli import main as gate_main
from ..runargs import pytest_argv
from ..shipped import policy as shipped_policy
from .publishers import publish

#: pytest's exit statuses of a test run that ended on its own: all passed, some failed
TESTS_FINISHED = (0, 1)


@dataclass(frozen=True)
class Options:
    output: Path
    config_space: Path | None = None
    policy: Path | None = None  # None: the policy shipped with the package
    publish_to: str = ""
    pytest_args: tuple[str, ...] = ()
    in_vm: bool = False
    #: publish on this cloud too (its vendor's image), in these regions, its runs given these
    publish_cloud: str = ""
    publish_regions: tuple[str, ...] = ()
    cloud_pytest_args: tuple[str, ...] = ()


def say(message: str) -> None:
    print(f"debian-cloud-tests pipeline: {message}", flush=True)


def test_image(image: Path, spec: BuildSpec, output: Path, extra: tuple[str, ...] = ()) -> tuple[int, Path]:
    """Run every suite against *image* under QEMU; return pytest's exit code and the JUnit path."""
    junit = (output / f"{spec.name}.results.xml").resolve()
    cmd = [sys.executable, "-m", "pytest",
           *pytest_argv("qemu", str(image.resolve()), junit, (output / "artifacts").resolve(),
                        arch=spec.arch, firmware=spec.firmware, extra=extra)]
    return subprocess.run(cmd, cwd=output, check=False).returncode, junit


def verdict_path(output: Path, name: str) -> Path:
    """Where the gate's verdict on image *name* goes (its Markdown beside it, ``.md``)."""
    return output / f"{name}.gate.json"


def gate(report: Path, policy: Path, sha256: str, verdict: Path, quiet: bool = False) -> int:
    """The gate's exit code on *report* for the image *sha256*, its verdict written to *verdict*."""
    return gate_main([str(report), "--policy", str(policy), "--image-sha256", sha256,
                      *(["-q"] if quiet else []), "--json", str(verdict),
                      "--markdown", str(verdict.with_suffix(".md"))])


def run(spec: BuildSpec, opts: Options) -> int:
    """Exit code: the gate's (0 published or publishable, 1 hold), or a step's own error code."""
    policy = opts.policy or shipped_policy()  # found before the build: a missing one fails fast
    if opts.publish_cloud:
        cloud_vendors(opts, (spec.vendor,))
    say(f"building {spec.name} ({' '.join(spec.classes())})")
    built = build(spec, opts.output, opts.config_space, in_vm=opts.in_vm)
    say(f"built {built.image} sha256 {built.sha256}")
    rc, junit = test_image(built.image, spec, opts.output, opts.pytest_args)
    say(f"tests exited {rc}; JUnit {junit}")
    if rc not in TESTS_FINISHED:
        say(f"the tests did not run to their end (pytest exit {rc}): not gating, not publishing")
        return rc
    if not junit.exists():
        say("no JUnit report was written: the tests could not run; not gating, not publishing")
        return rc or 2
    verdict = verdict_path(opts.output, spec.name)
    gate_rc = gate(junit, policy, built.sha256, verdict)
    if gate_rc != 0:
        say(f"gate: {'HOLD' if gate_rc == 1 else 'input error'} ({verdict}); not published")
        return gate_rc
    if opts.publish_to:
        for location in publish(built.image, built.manifest, verdict, opts.publish_to):
            say(f"published {location}")
    if opts.publish_cloud:
        return publish_on_cloud(built.image, built.manifest, verdict, opts, policy)
    if not opts.publish_to:
        say(f"gate: PUBLISH ({verdict}); no --publish-to or --publish-cloud given")
    return 0


def cloud_vendors(opts: Options, vendors: tuple[str, ...]) -> tuple[str, ...]:
    """The vendors of a build whose images --publish-cloud publishes (refused up front when there
    is none, before anything is built)."""
    if not opts.publish_cloud:
        return ()
    from ..publication.steps import CLOUD_VENDOR

    wanted = CLOUD_VENDOR.get(opts.publish_cloud)
    if wanted not in vendors:
        raise UsageError(f"--publish-cloud {opts.publish_cloud} publishes the {wanted} image, which "
                         f"this pipeline does not build (--vendor {','.join(vendors)})")
    if not opts.publish_regions:
        raise UsageError(f"--publish-cloud {opts.publish_cloud}: give --publish-region (one or more)")
    return (str(wanted),)


def publish_on_cloud(image: Path, manifest: Path, verdict: Path, opts: Options, policy: Path) -> int:
    """The image, cleared under QEMU, registered privately on the cloud, tested there, released
    or removed (see debian_cloud_tests.publication)."""
    from ..publication import state, steps

    job = steps.Job(image, state.default_path(image, opts.publish_cloud),
                    steps.publisher(opts.publish_cloud))
    return steps.run_steps(job, steps.Request(
        manifest=manifest, verdict=verdict, regions=opts.publish_regions, output=opts.output,
        policy=policy, pytest_args=opts.cloud_pytest_args))

"""The pipeline over several vendors: build each image, test each under its own cloud's
datasource (the image's name says which; tests run at once where the cores allow, beside the next
build), gate each, and publish only when every image's verdict is *publish*.

One image held holds them all: a release of the vendor images is one release.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..errors import UsageError
from ..faibuild.driver import build
from ..faibuild.spec import CLOUD_VENDORS, BuildSpec
from ..gate import junit
from ..gate.errors import GateInputError
from ..junitprops import Prop
from ..shipped import policy as shipped_policy
from .publishers import publish
from .run import TESTS_FINISHED, Options, cloud_vendors, gate, publish_on_cloud, say, test_image, verdict_path


def vendors(value: str) -> tuple[str, ...]:
    """``all`` (every cloud vendor) or a comma-separated list: the vendors to build (checked by
    BuildSpec)."""
    return CLOUD_VENDORS if value == "all" else tuple(v.strip() for v in value.split(",") if v.strip())


@dataclass
class Outcome:
    """One vendor's way through the pipeline, with what each step took."""

    vendor: str
    image: str = ""
    sha256: str = ""
    build_seconds: float = 0.0
    test_seconds: float = 0.0
    boot_seconds: float = 0.0  # of the test run: launch to SSH-ready, every machine it launched
    tests_rc: int | None = None
    gate_rc: int | None = None
    verdict: str = ""


def default_jobs() -> int:
    """Test runs at once: one per two cores (a guest has two vCPUs unless told otherwise)."""
    return max(1, (os.cpu_count() or 1) // 2)


def run_matrix(base: BuildSpec, names: tuple[str, ...], opts: Options, jobs: int | None = None) -> int:
    """Exit code: 0 every image publishable (published with --publish-to), 1 any held, 2 a test
    report the gate cannot read; a build's own error code stops the matrix."""
    if jobs is not None and jobs < 1:
        raise UsageError(f"--jobs {jobs}: give 1 or more")
    specs = [replace(base, vendor=name) for name in names]  # each checked before anything is built
    policy = opts.policy or shipped_policy()
    on_cloud = cloud_vendors(opts, names)
    opts.output.mkdir(parents=True, exist_ok=True)
    outcomes = {spec.vendor: Outcome(spec.vendor) for spec in specs}
    started = time.monotonic()
    built: dict[str, tuple[Path, Path]] = {}  # vendor -> image, manifest
    with ThreadPoolExecutor(max_workers=jobs or default_jobs(), thread_name_prefix="test") as pool:
        tests: dict[str, Future[tuple[int, Path, float]]] = {}
        for spec in specs:
            say(f"building {spec.name}")
            t0 = time.monotonic()
            result = build(spec, opts.output, opts.config_space, in_vm=opts.in_vm)
            outcome = outcomes[spec.vendor]
            outcome.build_seconds = round(time.monotonic() - t0, 1)
            outcome.image, outcome.sha256 = str(result.image), result.sha256
            built[spec.vendor] = (result.image, result.manifest)
            say(f"built {result.image} in {outcome.build_seconds:.0f} s; testing it")
            tests[spec.vendor] = pool.submit(_timed_test, result.image, spec, opts)
        for vendor, future in tests.items():
            rc, report, seconds = future.result()
            outcome = outcomes[vendor]
            outcome.tests_rc, outcome.test_seconds = rc, seconds
            outcome.boot_seconds = _boot_seconds(report)
            outcome.gate_rc, outcome.verdict = _gate(report, rc, policy, outcome, opts.output)
    rc = _verdict(outcomes)
    _write_summary(opts.output, outcomes, time.monotonic() - started, rc)
    if rc != 0:
        say("not every image may be published: none is")
        return rc
    if not opts.publish_to and not on_cloud:
        say("every image may be published; no --publish-to or --publish-cloud given")
        return 0
    for image, manifest in built.values():
        for location in publish(image, manifest, verdict_path(opts.output, image.stem),
                                opts.publish_to) if opts.publish_to else ():
            say(f"published {location}")
    for vendor in on_cloud:
        image, manifest = built[vendor]
        rc = publish_on_cloud(image, manifest, verdict_path(opts.output, image.stem), opts, policy)
        if rc != 0:
            return rc
    return 0


def _timed_test(image: Path, spec: BuildSpec, opts: Options) -> tuple[int, Path, float]:
    t0 = time.monotonic()
    rc, report = test_image(image, spec, opts.output, opts.pytest_args)
    return rc, report, round(time.monotonic() - t0, 1)


def _boot_seconds(report: Path) -> float:
    try:
        runs = junit.parse(report)
    except GateInputError:
        return 0.0
    seconds = [float(run.prop(Prop.BOOT_SECONDS) or 0) for run in runs]
    return round(sum(seconds), 1)


def _gate(report: Path, tests_rc: int, policy: Path, outcome: Outcome, output: Path) -> tuple[int, str]:
    if tests_rc not in TESTS_FINISHED or not report.exists():
        say(f"{outcome.vendor}: the tests did not run to their end (pytest exit {tests_rc}): held")
        return 1, "hold"
    verdict = verdict_path(output, Path(outcome.image).stem)
    rc = gate(report, policy, outcome.sha256, verdict, quiet=True)
    word = {0: "publish", 1: "hold"}.get(rc, "input error")
    say(f"{outcome.vendor}: gate {word.upper()} ({verdict})")
    return rc, word


def _verdict(outcomes: dict[str, Outcome]) -> int:
    codes = {o.gate_rc for o in outcomes.values()}
    if codes == {0}:
        return 0
    return 2 if codes - {0, 1} else 1


def _write_summary(output: Path, outcomes: dict[str, Outcome], wall: float, rc: int) -> None:
    """matrix.json: each vendor's steps and times, and where the wall time went."""
    build = sum(o.build_seconds for o in outcomes.values())
    boot = sum(o.boot_seconds for o in outcomes.values())
    checking = sum(max(0.0, o.test_seconds - o.boot_seconds) for o in outcomes.values())
    summary = {"verdict": {0: "publish", 1: "hold"}.get(rc, "input error"),
               "wall_seconds": round(wall, 1),
               "seconds": {"building": round(build, 1), "booting": round(boot, 1),
                           "checking": round(checking, 1)},
               "images": [asdict(o) for o in outcomes.values()]}
    (output / "matrix.json").write_text(json.dumps(summary, indent=2) + "\n")
    say(f"matrix: {summary['verdict']} in {wall:.0f} s (building {build:.0f} s, booting "
        f"{boot:.0f} s, checking {checking:.0f} s, summed over the images); {output / 'matrix.json'}")

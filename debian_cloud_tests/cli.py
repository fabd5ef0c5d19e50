"""The `debian-cloud-tests` command: run, gate, checks, audit-coverage, gc,
providers, test-image, demo, build, pipeline, publish.

Each subcommand is a thin layer over a module that does the work; exit codes are those of
:mod:`debian_cloud_tests.errors` (and pytest's for `run`), documented in the README.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from . import subcommands
from .errors import guarded
from .gate.errors import EXIT_HOLD, EXIT_INPUT, EXIT_PUBLISH
from .paths import local_ca_certs
from .runargs import pytest_argv

EPILOG = ("exit codes: 0 ok/publish, 1 checks failed/hold, 2 gate input error, 20-45 see README, "
          "141 output closed early (| head)")


def _pytest_argv(args: argparse.Namespace, provider: str, image: str, junit: Path, artifacts: Path,
                 extra: Sequence[str] = ()) -> list[str]:
    """pytest's arguments for one run: the plugin, its target, JUnit and artefacts."""
    given = list(args.pytest_args)
    if given[:1] == ["--"]:  # the separator before pytest's own options is ours, not pytest's
        given = given[1:]
    return pytest_argv(provider, image, junit, artifacts, arch=args.arch, firmware=args.firmware,
                       secure_boot=getattr(args, "secure_boot", False), extra=[*extra, *given])


def _run(args: argparse.Namespace) -> int:
    """pytest with the plugin and sane defaults: JUnit and artefacts under --output; several
    targets or instances run at once, each its own session (see parallel.py)."""
    from . import parallel
    from .errors import UsageError
    from .rundir import new_run_id

    targets = [parallel.parse_target(t) for t in getattr(args, "target", None) or []]
    if args.image:
        targets.insert(0, parallel.Target(args.provider, args.image))
    if not targets:
        raise UsageError("give --image (with --provider, default qemu), or one or more "
                         "--target PROVIDER:IMAGE")
    runs = parallel.expand(targets, getattr(args, "instances", 1))
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    name = args.name or new_run_id()
    if len(runs) > 1:
        return parallel.run_all(runs, lambda t, junit: _pytest_argv(
            args, t.provider, t.image, junit, out / "artifacts" / t.label, t.options), out, name)
    import pytest

    only = runs[0]
    junit = out / (name + ".xml")
    rc = int(pytest.main(_pytest_argv(args, only.provider, only.image, junit, out / "artifacts",
                                      only.options)))
    print(f"debian-cloud-tests: JUnit written to {junit}")
    return rc


def _providers(args: argparse.Namespace) -> int:
    """One line per provider: installed, and where its credentials and tools come from."""
    from . import preflight

    names = list(dict.fromkeys([*args.names, *args.require]))
    from .options import scope_options

    options = {opt.spec_key: value for opt, _ in scope_options().values()
               if (value := getattr(args, opt.spec_key, None))}
    reports = preflight.check_all(names, options)
    print(preflight.as_json(reports) if args.json else preflight.as_table(reports))
    preflight.require(reports, args.require)
    return 0


def _test_image(args: argparse.Namespace) -> int:
    from .testimage.builder import Recipe, build_image

    path = build_image(Recipe(release=args.release, arch=args.arch, fmt=args.format,
                              defects=tuple(args.defect)))
    print(path)
    return 0


def _demo(args: argparse.Namespace) -> int:
    """Build the test image if needed, boot it under QEMU, run the suites, gate the result."""
    from .shipped import policy as shipped_policy
    from .testimage.builder import Recipe, build_image

    # Both found before anything is built or booted: a demo that cannot gate fails at once.
    policy = shipped_policy()
    gate = subcommands.load("gate.cli", "demo").main
    print("debian-cloud-tests demo: building (or reusing) a bookworm test image …", flush=True)
    image = build_image(Recipe(arch=args.arch))
    print(f"debian-cloud-tests demo: image {image}", flush=True)
    # The guest reaches its https mirrors through this host: behind a TLS-intercepting proxy
    # it must trust the CAs the host's administrator added, as the host does.
    local_cas = local_ca_certs()
    if local_cas:
        print(f"debian-cloud-tests demo: the guest also trusts this host's local CAs "
              f"({', '.join(c.name for c in local_cas)}) through cloud-init ca_certs", flush=True)
    ns = argparse.Namespace(provider="qemu", image=str(image), arch=args.arch, firmware=None,
                            output=args.output, name="demo",
                            # The test image is built like Debian's genericcloud (cloud kernel on amd64).
                            pytest_args=["--image-type=genericcloud",
                                         *(f"--ca-cert={c}" for c in local_cas)])
    rc = _run(ns)
    return _demo_verdict(rc, Path(args.output) / "demo.xml", policy, gate)


def _demo_verdict(rc: int, junit: Path, policy: Path, gate: Callable[[list[str]], int]) -> int:
    """The gate's verdict on the demo's report; no report is an error, never a publish."""
    if not junit.exists():
        print(f"debian-cloud-tests demo: error: the tests wrote no JUnit report ({junit}; pytest exit "
              f"{rc}): nothing to gate, so nothing to publish", file=sys.stderr)
        return rc or EXIT_INPUT
    verdict = gate([str(junit), "--policy", str(policy)])
    said = {EXIT_PUBLISH: "PUBLISH", EXIT_HOLD: "HOLD"}.get(verdict, f"none (gate exit {verdict})")
    print(f"debian-cloud-tests demo: checks {'passed' if rc == 0 else 'FAILED'}; "
          f"verdict: {said}; JUnit: {junit}")
    return verdict


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="debian-cloud-tests", description=__doc__.splitlines()[0],
                                     epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="boot an image on a provider and run the suites")
    run.add_argument("--provider", default="qemu")
    run.add_argument("--image", help="the image to test on --provider")
    run.add_argument("--target", action="append", metavar="'PROVIDER:IMAGE [OPTION…]'",
                     help="a further provider and image, with options for it alone; repeatable, "
                     "the runs go in parallel, each with its own JUnit NAME-PROVIDER.xml")
    run.add_argument("--instances", type=int, default=1, metavar="N",
                     help="launch and test N instances of each image at once (default 1)")
    run.add_argument("--arch", choices=["amd64", "arm64"])
    run.add_argument("--firmware", choices=["bios", "uefi"])
    run.add_argument("--secure-boot", action="store_true",
                     help="boot with UEFI Secure Boot enforced (implies --firmware uefi)")
    run.add_argument("--output", default="results", help="directory for JUnit and artefacts")
    run.add_argument("--name", help="JUnit file name (default: the run id)")
    run.add_argument("pytest_args", nargs=argparse.REMAINDER,
                     help="further pytest options, after -- (e.g. -- -k metadata)")
    run.set_defaults(func=_run)

    providers = sub.add_parser("providers", help="list providers: installed, and whether their "
                               "credentials are found (nothing is created, no cloud is contacted)")
    providers.add_argument("names", nargs="*", metavar="NAME",
                           help="only these (default: all, or the --require ones)")
    providers.add_argument("--json", action="store_true", help="a JSON list instead of the table")
    providers.add_argument("--require", action="append", default=[], metavar="NAME",
                           help="exit with the error code of NAME if it is not ready (repeatable)")
    from .options import add_scope_arguments

    add_scope_arguments(providers)
    providers.set_defaults(func=_providers)

    image = sub.add_parser("test-image", help="build a small Debian cloud image for testing")
    image.add_argument("--release", default="bookworm")
    image.add_argument("--arch", default="amd64", choices=["amd64", "arm64"])
    image.add_argument("--format", default="qcow2", choices=["qcow2", "raw"])
    image.add_argument("--defect", action="append", default=[], help="plant a defect (repeatable)")
    image.set_defaults(func=_test_image)

    demo = sub.add_parser("demo", help="build a test image, boot it under QEMU, test and gate it")
    demo.add_argument("--arch", default="amd64", choices=["amd64", "arm64"])
    demo.add_argument("--output", default="results")
    demo.set_defaults(func=_demo)

    subcommands.add_all(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return guarded(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())

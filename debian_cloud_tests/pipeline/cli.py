"""`debian-cloud-tests pipeline` (build, test, gate, publish; one vendor, a list, or all) and
`publish` (the last step alone)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..faibuild import cli as build_cli

EPILOG = ("exit codes: 0 publish (published with --publish-to), 1 hold, 2 gate input error, "
          "20-45 see `build --help`, 50 publish refused, 51 upload failed, 52 unknown destination")


def _pipeline(args: argparse.Namespace) -> int:
    from .matrix import run_matrix, vendors
    from .run import Options, run

    opts = Options(output=args.output, config_space=args.config_space, policy=args.policy,
                   publish_to=args.publish_to or "", pytest_args=tuple(args.pytest_arg),
                   in_vm=args.in_vm)
    names = vendors(args.vendor)
    if "vagrant" in names:
        raise UsageError("pipeline tests under QEMU: build the vagrant box with `build --vendor "
                         "vagrant` and test it with pytest --provider=vagrant --image=BOX")
    if args.vendor == "all" or len(names) > 1:
        first = build_cli.spec_from(argparse.Namespace(**{**vars(args), "vendor": names[0]}))
        return run_matrix(first, names, opts, args.jobs)
    return run(build_cli.spec_from(args), opts)


def _publish(args: argparse.Namespace) -> int:
    from .publishers import publish

    manifest = args.manifest or args.image.with_suffix(".json")
    for location in publish(args.image, manifest, args.verdict, args.to):
        print(f"published {location}")
    return 0


def add_parser(sub: Any) -> None:
    """Register `pipeline` and `publish` with the main command."""
    pipe = sub.add_parser("pipeline", help="build an image, test it under QEMU, gate it, publish it",
                          description=__doc__.splitlines()[0], epilog=EPILOG)
    build_cli.configure(pipe)
    pipe.add_argument("--policy", type=Path, help="gate policy (default: Debian's, shipped in the package; "
                      "examples/policy.toml in a checkout)")
    pipe.add_argument("--publish-to", metavar="URL", help="e.g. s3://bucket/prefix; only on publish")
    pipe.add_argument("--pytest-arg", action="append", default=[], metavar="ARG",
                      help="extra pytest option for the test step (repeatable)")
    pipe.add_argument("--jobs", type=int, metavar="N",
                      help="with several vendors (--vendor all, or a comma-separated list): test "
                      "runs at once (default: one per two cores)")
    pipe.set_defaults(func=_pipeline)

    pub = sub.add_parser("publish", help="publish an image the gate cleared",
                         description="Upload an image whose passing gate verdict is for its exact sha256.",
                         epilog=EPILOG)
    pub.add_argument("image", type=Path)
    pub.add_argument("--verdict", type=Path, required=True, help="the gate's --json output")
    pub.add_argument("--manifest", type=Path, help="default: IMAGE with .json")
    pub.add_argument("--to", required=True, metavar="URL", help="e.g. s3://bucket/prefix")
    pub.set_defaults(func=_publish)


def main(argv: list[str] | None = None) -> int:
    """`python -m debian_cloud_tests.pipeline.cli pipeline|publish …`: the subcommands on their own."""
    from ..errors import guarded

    parser = argparse.ArgumentParser(prog="debian-cloud-tests", epilog=EPILOG)
    add_parser(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    return guarded(lambda: args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())

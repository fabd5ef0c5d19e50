"""`debian-cloud-tests pipeline` (build, test, gate, publish; one vendor, a list, or all) and
`publish` (the last step alone)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..faibuild import cli as build_cli
from ..publication.steps import PUBLISHERS

#: the clouds `publish --cloud` and `pipeline --publish-cloud` know
CLOUDS = tuple(sorted(PUBLISHERS))

EPILOG = ("exit codes: 0 publish (published with --publish-to; released with --cloud), 1 hold "
          "(with --cloud: every private copy removed), 2 gate input error, 20-45 see `build "
          "--help`, 50 publish refused, 51 upload failed, 52 unknown destination, 53 not permitted "
          "to upload or register, 54 unknown region, 55 image too large, 56 publication state, 58 "
          "no bucket or container")


def _pipeline(args: argparse.Namespace) -> int:
    from .matrix import run_matrix, vendors
    from .run import Options, run

    opts = Options(output=args.output, config_space=args.config_space, policy=args.policy,
                   publish_to=args.publish_to or "", pytest_args=tuple(args.pytest_arg),
                   in_vm=args.in_vm, publish_cloud=args.publish_cloud or "",
                   publish_regions=tuple(args.publish_region),
                   cloud_pytest_args=tuple(args.cloud_pytest_arg))
    names = vendors(args.vendor)
    if "vagrant" in names:
        raise UsageError("pipeline tests under QEMU: build the vagrant box with `build --vendor "
                         "vagrant` and test it with pytest --provider=vagrant --image=BOX")
    if args.vendor == "all" or len(names) > 1:
        first = build_cli.spec_from(argparse.Namespace(**{**vars(args), "vendor": names[0]}))
        return run_matrix(first, names, opts, args.jobs)
    return run(build_cli.spec_from(args), opts)


def _publish(args: argparse.Namespace) -> int:
    manifest = args.manifest or args.image.with_suffix(".json")
    if args.cloud:
        return _publish_on_cloud(args, manifest)
    if not args.to:
        raise UsageError("publish: give --to URL (files) or --cloud CLOUD --region REGION")
    if args.verdict is None:
        raise UsageError("publish --to: give --verdict, the gate's --json output for this image")
    from .publishers import publish

    for location in publish(args.image, manifest, args.verdict, args.to):
        print(f"published {location}")
    return 0


def _publish_on_cloud(args: argparse.Namespace, manifest: Path) -> int:
    """:func:`_publish_steps`; SIGTERM (a cancelled CI job) stops it as Ctrl-C does, with the
    state kept to resume from, and the exit status of an interrupted command."""
    from .. import interrupts

    interrupts.install()
    try:
        return _publish_steps(args, manifest)
    except KeyboardInterrupt:
        interrupts.record_exit_status(130)
        raise


def _publish_steps(args: argparse.Namespace, manifest: Path) -> int:
    from ..publication import state, steps

    if args.ssm_prefix and args.cloud != "aws":
        raise UsageError(f"--ssm-prefix is for --cloud aws, not {args.cloud}")
    options = {"ssm_prefix": args.ssm_prefix} if args.ssm_prefix else {}
    job = steps.Job(args.image, args.state or state.default_path(args.image, args.cloud),
                    steps.publisher(args.cloud, **options))
    return steps.run_steps(job, steps.Request(
        steps=steps.STEPS if args.step == "all" else (args.step,), manifest=manifest,
        verdict=args.verdict, regions=tuple(args.region), output=args.output, policy=args.policy,
        pytest_args=tuple(args.pytest_arg)))


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
    pipe.add_argument("--publish-cloud", choices=CLOUDS,
                      help="on publish, also publish the cloud's image there: registered "
                      "privately, tested there, released on the gate's publish (see `publish`)")
    pipe.add_argument("--publish-region", action="append", default=[], metavar="REGION",
                      help="with --publish-cloud: where (repeatable; the first is uploaded to)")
    pipe.add_argument("--cloud-pytest-arg", action="append", default=[], metavar="ARG",
                      help="with --publish-cloud: extra pytest option for the runs there")
    pipe.add_argument("--jobs", type=int, metavar="N",
                      help="with several vendors (--vendor all, or a comma-separated list): test "
                      "runs at once (default: one per two cores)")
    pipe.set_defaults(func=_pipeline)

    pub = sub.add_parser("publish", help="publish an image the gate cleared",
                         description="Upload an image whose passing gate verdict is for its exact "
                         "sha256 (--to), or publish it on a cloud (--cloud): register it privately "
                         "in each --region, test every copy there, release them on a publish "
                         "verdict or remove them on hold.", epilog=EPILOG)
    pub.add_argument("image", type=Path)
    pub.add_argument("--verdict", type=Path, help="the (local) gate's --json output for IMAGE")
    pub.add_argument("--manifest", type=Path, help="default: IMAGE with .json")
    target = pub.add_mutually_exclusive_group()
    target.add_argument("--to", metavar="URL", help="files: e.g. s3://bucket/prefix")
    target.add_argument("--cloud", choices=CLOUDS, help="register, test and release there")
    pub.add_argument("--region", action="append", default=[], metavar="REGION",
                     help="with --cloud: where to register (repeatable; the first is uploaded to)")
    pub.add_argument("--step", choices=("register", "test", "release", "all"), default="all",
                     help="with --cloud: one step alone (each resumes from --state)")
    pub.add_argument("--state", type=Path, metavar="FILE",
                     help="with --cloud: the publication's state (default: beside IMAGE)")
    pub.add_argument("--output", type=Path, metavar="DIR",
                     help="with --cloud: JUnit reports and the verdict (default: IMAGE's directory)")
    pub.add_argument("--policy", type=Path, help="with --cloud: the gate policy for the release")
    pub.add_argument("--pytest-arg", action="append", default=[], metavar="ARG",
                     help="with --cloud: extra pytest option for the test step (repeatable)")
    pub.add_argument("--ssm-prefix", metavar="PATH",
                     help="with --cloud aws: where the released AMI's \"latest\" SSM parameters go")
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

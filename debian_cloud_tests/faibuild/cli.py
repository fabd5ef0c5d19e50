"""`debian-cloud-tests build`: build a Debian cloud image with FAI from a config space."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import guarded
from .spec import BuildSpec

EPILOG = ("exit codes: 0 built, 20 bad option, 25 FAI or a tool missing, 40 the build failed, "
          "41 not root, 42 not enough space, 43 config space lacks a class, 44 needs --in-vm, "
          "45 --in-vm unavailable")


def configure(parser: argparse.ArgumentParser) -> None:
    # Values are checked by BuildSpec, not by argparse choices: one line and exit 20, not usage.
    parser.add_argument("--release", required=True, help="bookworm or trixie")
    parser.add_argument("--vendor", required=True,
                        help="generic, genericcloud, nocloud, ec2, gce, azure or vagrant (a libvirt "
                        ".box; pipeline: not vagrant, but several, comma-separated, or all)")
    parser.add_argument("--arch", default="amd64", help="amd64 (default) or arm64")
    parser.add_argument("--firmware", default="", help="bios (amd64 default) or uefi (arm64 default)")
    parser.add_argument("--size", default="2G", help="disk size, e.g. 2G (default)")
    parser.add_argument("--format", default="qcow2", dest="fmt", help="qcow2 (default) or raw")
    parser.add_argument("--output", default="images", type=Path, help="directory for image, manifest, log")
    parser.add_argument("--config-space", type=Path,
                        help="FAI config space (default: the one shipped in the package; examples/fai "
                        "in a checkout)")
    parser.add_argument("--class", dest="extra_classes", action="append", default=[], metavar="CLASS",
                        help="an extra FAI class, e.g. DEFECT_SSH_PASSWORD (repeatable)")
    parser.add_argument("--in-vm", action="store_true",
                        help="build inside a disposable QEMU VM (needed for UEFI and arm64)")


def spec_from(args: argparse.Namespace) -> BuildSpec:
    return BuildSpec(release=args.release, vendor=args.vendor, arch=args.arch, firmware=args.firmware,
                     size=args.size, fmt=args.fmt, extra_classes=tuple(args.extra_classes))


def run(args: argparse.Namespace) -> int:
    from .driver import build

    result = build(spec_from(args), args.output, args.config_space, in_vm=args.in_vm)
    print(f"image {result.image}\nsha256 {result.sha256}\nmanifest {result.manifest}\nlog {result.log}")
    return 0


def add_parser(sub: Any) -> None:
    """Register `build` with the main command."""
    parser = sub.add_parser("build", help="build a Debian cloud image with FAI", epilog=EPILOG,
                            description=__doc__.splitlines()[0])
    configure(parser)
    parser.set_defaults(func=run)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m debian_cloud_tests.faibuild.cli`: the subcommand on its own."""
    parser = argparse.ArgumentParser(prog="debian-cloud-tests build", epilog=EPILOG,
                                     description=__doc__.splitlines()[0])
    configure(parser)
    args = parser.parse_args(argv)
    return guarded(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())

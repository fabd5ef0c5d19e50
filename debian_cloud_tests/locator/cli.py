"""`debian-cloud-tests images`: the Debian images a cloud offers, newest first."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .model import ARCHES, Query, parse_release
from .registry import LOCATORS, offered

EPILOG = ("exit codes: 0 listed (also when none match), 20 bad option, 25 the cloud's SDK is "
          "missing, 30 the cloud failed; credentials as the provider finds them")


def _images(args: argparse.Namespace) -> int:
    query = Query(parse_release(args.release) if args.release else None, args.arch)
    found = offered(args.provider, query, args.region)
    if args.json:
        print(json.dumps([image.as_json() for image in found], indent=2))
        return 0
    for image in found:
        pointers = f"  ({', '.join(image.pointers)})" if image.pointers else ""
        print(f"{image.created[:19]:19}  {image.version:>2} {image.arch:5}  "
              f"{image.region + '  ' if image.region else ''}{image.id}  {image.name}{pointers}")
    return 0


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("images", help="list the Debian images a cloud offers, newest first",
                            description=__doc__.splitlines()[0].split(": ", 1)[1], epilog=EPILOG)
    parser.add_argument("--provider", required=True, choices=sorted(LOCATORS))
    parser.add_argument("--region", help="where images are regional (aws, azure, openstack)")
    parser.add_argument("--release", metavar="12|13|bookworm|trixie")
    parser.add_argument("--arch", choices=ARCHES)
    parser.add_argument("--json", action="store_true", help="one JSON list")
    parser.set_defaults(func=_images)

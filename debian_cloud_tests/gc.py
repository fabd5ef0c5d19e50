"""`debian-cloud-tests gc`: remove what killed runs left behind.

Locally: run dirs (keys, overlays, sockets) whose run and guard are both gone, and the QEMU
processes registered in them.  On a cloud: resources whose expiry tag is past, through the
provider's own ``gc`` module (``collect_garbage``).  Live runs are never touched: a run dir is
stale only when no process mentions it any more, a cloud resource only once it has expired.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from .rundir import PIDS_FILE, PREFIX, reap

MIN_AGE = 60.0  # seconds


def _holders(path: Path) -> list[int]:
    """Processes other than QEMU whose command line names *path* (the run's guard)."""
    registered: set[int] = set()
    with contextlib.suppress(OSError, ValueError):
        registered = {int(p) for p in (path / PIDS_FILE).read_text().split()}
    holders = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) in registered or int(proc.name) == os.getpid():
            continue
        try:
            if str(path).encode() in (proc / "cmdline").read_bytes():
                holders.append(int(proc.name))
        except OSError:
            continue
    return holders


def collect_local(base: Path | None = None) -> list[str]:
    """Reap run dirs in *base* (default: the temp dir) that no live guard holds."""
    base = base or Path(tempfile.gettempdir())
    removed = []
    for path in sorted(base.glob(f"{PREFIX}*")):
        # A run that is starting may not have its guard exec'd yet: leave young dirs alone.
        if path.is_dir() and time.time() - path.stat().st_mtime > MIN_AGE and not _holders(path):
            reap(path)
            removed.append(str(path))
    return removed


def print_deleted(deleted: Iterable[str], prefix: str = "") -> int:
    """Say what a provider's collect_garbage removed, one line each."""
    for item in deleted:
        print(f"{prefix}deleted {item}")
    return 0


def _run(args: argparse.Namespace) -> int:
    for path in collect_local():
        print(f"removed stale run dir {path}")
    for name in args.provider or []:
        module = importlib.import_module(f"debian_cloud_tests.providers.{name}.gc")
        kwargs = {"region": args.region} if args.region is not None or name == "aws" else {}
        print_deleted(module.collect_garbage(now=datetime.now(UTC), **kwargs), f"{name}: ")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("gc", help="remove run dirs, VMs and cloud resources that killed runs left")
    parser.add_argument("--provider", action="append", help="also collect expired resources on this "
                        "cloud (repeatable; e.g. aws)")
    parser.add_argument("--region", help="cloud region (default: the SDK's configuration)")
    parser.set_defaults(func=_run)

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
import importlib.util
import inspect
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import UnknownProviderError, UsageError
from .provider import available
from .rundir import PIDS_FILE, PREFIX, reap

MIN_AGE = 60.0  # seconds
#: the scoping options of `gc`, and the names a provider's collect_garbage takes each one by
SCOPES: dict[str, tuple[str, ...]] = {"region": ("region",), "project": ("project",),
                                      "os_cloud": ("cloud", "os_cloud"),
                                      "subscription": ("subscription",)}


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


def gc_module_name(name: str) -> str | None:
    """The ``gc`` module of provider *name* (found, not imported), None when it has none.

    Providers come from the same registry the plugin uses; a provider package's ``gc`` submodule
    holds its ``collect_garbage``.

    Raises:
        UnknownProviderError: no provider of that name is installed.
    """
    known = available()
    if name not in known:
        raise UnknownProviderError(f"gc: unknown provider {name!r}; installed: {', '.join(sorted(known))}")
    module = f"{known[name].partition(':')[0]}.gc"
    try:
        found = importlib.util.find_spec(module)
    except ImportError:  # the provider is a module, not a package: no gc beside it
        found = None
    return module if found is not None else None


def _collector(name: str) -> Callable[..., list[str]]:
    """Provider *name*'s collect_garbage.

    Raises:
        UnknownProviderError: not installed, or nothing to collect on it.
    """
    module = gc_module_name(name)
    collect = getattr(importlib.import_module(module), "collect_garbage", None) if module else None
    if collect is None:
        with_gc = [n for n in sorted(available()) if n != name and _has_gc(n)]
        raise UnknownProviderError(f"gc: provider {name!r} has no garbage collection (plain "
                                   f"`debian-cloud-tests gc` reaps local run dirs); with gc: "
                                   f"{', '.join(with_gc)}")
    return collect  # type: ignore[no-any-return]


def _has_gc(name: str) -> bool:
    try:
        return gc_module_name(name) is not None
    except (ImportError, UnknownProviderError):
        return False


def scoped_kwargs(collect: Callable[..., Any], given: dict[str, str | None]) -> dict[str, Any]:
    """The scoping options (region, project…) *collect* takes, by the name it takes them by.

    A required parameter (aws's region) is passed even when the option was not given (None:
    the SDK's configuration decides); the others only when given.
    """
    params = inspect.signature(collect).parameters
    kwargs: dict[str, Any] = {}
    for option, names in SCOPES.items():
        param = next((params[n] for n in names if n in params), None)
        if param is not None and (given.get(option) is not None or param.default is param.empty):
            kwargs[param.name] = given.get(option)
    return kwargs


def _run(args: argparse.Namespace) -> int:
    names = list(dict.fromkeys(args.provider or []))
    # every name and option is checked before anything is removed, locally or on a cloud
    collectors = {name: _collector(name) for name in names}
    given = {option: getattr(args, option, None) for option in SCOPES}
    for option, value in given.items():
        takers = [n for n, c in collectors.items() if any(p in inspect.signature(c).parameters
                                                          for p in SCOPES[option])]
        if value is not None and not takers:
            flag = "--" + option.replace("_", "-")
            raise UsageError(f"gc: {flag} applies to no provider given"
                             f"{' (' + ', '.join(names) + ')' if names else ''}; drop it")
    for path in collect_local():
        print(f"removed stale run dir {path}")
    for name, collect in collectors.items():
        print_deleted(collect(now=datetime.now(UTC), **scoped_kwargs(collect, given)), f"{name}: ")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("gc", help="remove run dirs, VMs and cloud resources that killed runs left")
    parser.add_argument("--provider", action="append", help="also collect expired resources on this "
                        "cloud (repeatable; e.g. aws)")
    parser.add_argument("--region", help="cloud region (aws, openstack, azure; default: the SDK's "
                        "configuration)")
    parser.add_argument("--project", help="gce: the project (default: from the credentials or "
                        "GOOGLE_CLOUD_PROJECT)")
    parser.add_argument("--os-cloud", dest="os_cloud", help="openstack: the cloud in clouds.yaml "
                        "(default: OS_CLOUD)")
    parser.add_argument("--subscription", help="azure: the subscription (default: "
                        "AZURE_SUBSCRIPTION_ID)")
    parser.set_defaults(func=_run)

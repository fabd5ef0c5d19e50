"""`debian-cloud-tests gc`: remove what killed runs left behind.

Locally: run dirs (keys, overlays, sockets) whose run and guard are both gone, and the QEMU
processes registered in them.  On a cloud: resources whose expiry tag is past, through the
provider's own ``gc`` module (``collect_garbage``).  Live runs are never touched: a run dir is
stale only when no process mentions it any more, a cloud resource only once it has expired.

Only the caller's own run dirs are touched: one that is a symlink, belongs to another user, is
group- or world-writable, or holds a record file that is any of these, is skipped with one line
saying why (root running gc must not kill another user's processes or remove their files), and
so is a run dir kept by ``--keep-instance``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import inspect
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import UnknownProviderError, UsageError
from .options import add_scope_arguments, scope_options
from .provider import available, provider_classes
from .rundir import CLOUD_FILE, KEPT_FILE, PIDS_FILE, PREFIX, mentions, reap

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
            if mentions((proc / "cmdline").read_bytes(), path):
                holders.append(int(proc.name))
        except OSError:
            continue
    return holders


def _not_ours(st: os.stat_result, what: str) -> str | None:
    """Why an entry of a run dir, lstat'd as *st*, is not the caller's alone, or None."""
    if stat.S_ISLNK(st.st_mode):
        return f"{what} is a symlink"
    if st.st_uid != os.geteuid():
        return f"{what} belongs to uid {st.st_uid}, not to this user (uid {os.geteuid()})"
    if st.st_mode & 0o022:
        return f"{what} is group- or world-writable (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def refusal(path: Path, st: os.stat_result) -> str | None:
    """Why gc must not touch the run dir *path* (lstat'd as *st*), or None when it is ours."""
    why = _not_ours(st, "it")
    if why:
        return why
    for name in (PIDS_FILE, CLOUD_FILE, KEPT_FILE):
        try:
            entry = (path / name).lstat()
        except FileNotFoundError:
            continue
        except OSError as exc:
            return f"its {name} cannot be read ({exc.strerror})"
        why = _not_ours(entry, f"its {name}") or (
            None if stat.S_ISREG(entry.st_mode) else f"its {name} is not a regular file")
        if why:
            return why
    if (path / KEPT_FILE).exists():
        return "kept by --keep-instance (its machine may still run; remove it yourself)"
    return None


def collect_local(base: Path | None = None) -> list[str]:
    """Reap the caller's run dirs in *base* (default: the temp dir) that no live guard holds;
    one line for each run dir skipped, and why."""
    base = base or Path(tempfile.gettempdir())
    removed = []
    for path in sorted(base.glob(f"{PREFIX}*")):
        try:
            st = path.lstat()  # never through a symlink
        except OSError:
            continue
        if not (stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            continue
        why = refusal(path, st)
        if why:
            print(f"skipped run dir {path}: {why}")
        # A run that is starting may not have its guard exec'd yet: leave young dirs alone.
        elif time.time() - st.st_mtime > MIN_AGE and not _holders(path) and reap(path):
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


def scoped_kwargs(name: str, collect: Callable[..., Any], given: dict[str, str | None]) -> dict[str, Any]:
    """The scopes (region, project…) provider *name* declares, by their keys, as *collect* takes
    them.  A required parameter (aws's region) is passed even when the option was not given
    (None: the SDK's configuration decides); the others only when given."""
    params = inspect.signature(collect).parameters
    kwargs: dict[str, Any] = {}
    for opt in provider_classes()[name].scope_options:
        param = params.get(opt.spec_key)
        if param is not None and (given.get(opt.spec_key) is not None or param.default is param.empty):
            kwargs[opt.spec_key] = given.get(opt.spec_key)
    return kwargs


def _run(args: argparse.Namespace) -> int:
    names = list(dict.fromkeys(args.provider or []))
    # every name and option is checked before anything is removed, locally or on a cloud
    collectors = {name: _collector(name) for name in names}
    scopes = scope_options()
    given = {opt.spec_key: getattr(args, opt.spec_key, None) for opt, _ in scopes.values()}
    for opt, owners in scopes.values():
        if given[opt.spec_key] is not None and not set(owners) & set(names):
            raise UsageError(f"gc: --{opt.name} applies to no provider given"
                             f"{' (' + ', '.join(names) + ')' if names else ''}; drop it")
    for path in collect_local():
        print(f"removed stale run dir {path}")
    for name, collect in collectors.items():
        print_deleted(collect(now=datetime.now(UTC), **scoped_kwargs(name, collect, given)), f"{name}: ")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("gc", help="remove run dirs, VMs and cloud resources that killed runs left")
    parser.add_argument("--provider", action="append", help="also collect expired resources on this "
                        "cloud (repeatable)")
    add_scope_arguments(parser)
    parser.set_defaults(func=_run)

"""Entries of the build cache nobody asks for any more are removed.

An image's key changes with the code that builds it and with every security update of its
release, so images and root trees of old keys pile up (tens of GB within days).  The builder
marks an entry used each time it hands it out (its mtime), and after building a new one removes
the entries of the same directory unused for :data:`IDLE` seconds: no run of any checkout on
this machine has wanted them for that long.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

from .. import mounts

#: two days: longer than any run, short enough that a week of security updates does not fill a disk
IDLE = 2 * 86400
#: files that belong to an entry and go with it, or stay for the next build of its key (locks)
COMPANIONS = (".json", ".lock")


def mark_used(entry: Path) -> None:
    """*entry* was handed out now (a failure to say so costs only an early rebuild)."""
    with contextlib.suppress(OSError):
        os.utime(entry)


def prune(directory: Path, keep: Path, idle: float = IDLE, now: float | None = None) -> list[Path]:
    """Remove the entries of *directory* unused for *idle* seconds, never *keep*; the removed."""
    now = time.time() if now is None else now
    removed: list[Path] = []
    try:
        entries = list(directory.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if entry == keep or entry.suffix in COMPANIONS or entry.name.startswith("dct-"):
            continue  # dct-…: a build's own temporary directory
        try:
            if now - entry.lstat().st_mtime < idle:
                continue
            if entry.is_dir() and not entry.is_symlink():
                mounts.unmount_under(entry)  # a build killed in its chroot may have left some
                shutil.rmtree(entry)
            else:
                entry.unlink()
            entry.with_suffix(".json").unlink(missing_ok=True)  # an image's recipe
        except OSError:
            continue  # in use or already gone: the next build tries again
        removed.append(entry)
    return removed

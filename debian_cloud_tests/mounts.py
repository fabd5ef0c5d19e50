"""This machine's mounts, read from /proc/mounts, and taking down what a build left mounted."""

from __future__ import annotations

import subprocess
from pathlib import Path


def mounts() -> list[tuple[str, str]]:
    """(source, mount point) of every mount, octal escapes decoded."""
    pairs = []
    for line in Path("/proc/mounts").read_text().splitlines():
        src, mnt = (f.encode().decode("unicode_escape") for f in line.split()[:2])
        pairs.append((src, mnt))
    return pairs


def under(root: str | Path) -> list[str]:
    """Mount points at or below *root*."""
    top = str(root).rstrip("/")
    return [mnt for _, mnt in mounts() if mnt == top or mnt.startswith(top + "/")]


def unmount_under(root: str | Path) -> None:
    """Lazily unmount everything at or below *root*, deepest first (a chroot's /proc, /sys, /dev
    left by a bootstrap that was killed), so that removing *root* cannot reach into them."""
    for mnt in sorted(under(root), key=len, reverse=True):
        subprocess.run(["umount", "-l", mnt], capture_output=True, check=False)

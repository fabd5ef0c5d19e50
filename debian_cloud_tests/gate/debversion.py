"""Debian version comparison (dpkg's algorithm), to tell a package upgrade from a downgrade.

A downgrade between two images usually means a wrong archive snapshot, so the baseline report
names it separately from upgrades; plain string order would get `1.10` vs `1.9` and `~rc` wrong.
"""

from __future__ import annotations


def _order(char: str) -> int:
    if not char or char.isdigit():
        return 0
    if char.isalpha():
        return ord(char)
    return -1 if char == "~" else ord(char) + 256


def _verrevcmp(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac, bc = _order(a[i:i + 1]), _order(b[j:j + 1])
            if ac != bc:
                return ac - bc
            i, j = i + 1, j + 1
        start_a, start_b = i, j
        while i < len(a) and a[i].isdigit():
            i += 1
        while j < len(b) and b[j].isdigit():
            j += 1
        num_a, num_b = int(a[start_a:i] or 0), int(b[start_b:j] or 0)
        if num_a != num_b:
            return -1 if num_a < num_b else 1
    return 0


def _split(version: str) -> tuple[int, str, str]:
    epoch, _, rest = version.partition(":") if ":" in version else ("0", "", version)
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "")
    try:
        return int(epoch or 0), upstream, revision
    except ValueError:
        return 0, version, ""


def compare(a: str, b: str) -> int:
    """Negative, zero or positive as version `a` is older than, equal to or newer than `b`."""
    ea, ua, ra = _split(a)
    eb, ub, rb = _split(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _verrevcmp(ua, ub) or _verrevcmp(ra, rb)

"""Finding the line of a key in TOML source, which tomllib does not report.

A policy mistake is fixed fastest when the message points at the line, so the validator asks this
module where a key path such as ("deny", 2, "expires") was written.  It understands headers,
arrays of tables and dotted keys; a key it cannot place is reported without a line.
"""

from __future__ import annotations

import re

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_PART = r"""(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')"""
_KEY = re.compile(rf"^\s*({_PART}(?:\s*\.\s*{_PART})*)\s*=")

Path = tuple[str | int, ...]


def _split_dotted(text: str) -> list[str]:
    parts = re.findall(_PART, text)
    return [p[1:-1] if p[:1] in "\"'" else p for p in parts]


def key_lines(source: str) -> dict[Path, int]:
    """Map every key path and table header in the source to its 1-based line number."""
    lines: dict[Path, int] = {}
    counters: dict[tuple[str, ...], int] = {}
    current: Path = ()
    in_multiline = ""
    for number, line in enumerate(source.splitlines(), start=1):
        if in_multiline:
            if line.count(in_multiline) % 2 == 1:
                in_multiline = ""
            continue
        header = _HEADER.match(line)
        if header:
            names = tuple(_split_dotted(header.group(2)))
            if header.group(1) == "[[":
                index = counters.get(names, -1) + 1
                counters[names] = index
                current = (*names, index)
            else:
                current = names
            lines.setdefault(current, number)
            if header.group(1) == "[[":
                lines.setdefault(current[:-1], number)
            continue
        key = _KEY.match(line)
        if key:
            lines.setdefault((*current, *_split_dotted(key.group(1))), number)
            rest = line[key.end():]
            for quote in ('"""', "'''"):
                if rest.count(quote) % 2 == 1:
                    in_multiline = quote
    return lines


def line_of(lines: dict[Path, int], path: Path) -> int | None:
    """The line of the key, or of its nearest enclosing table when the key itself is not found."""
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None

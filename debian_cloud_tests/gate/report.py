"""The human outputs: a short terminal summary and a Markdown report for merge requests.

The verdict comes first so that a CI log shows it without scrolling; colour only on a terminal,
so that logs and files stay plain text.
"""

from __future__ import annotations

import os
from typing import TextIO

from .reasons import Reason, grouped
from .summary import counts, headline, sections
from .verdict import Verdict

_WIDTH = 200
#: Lines per section on the terminal; the files (--markdown, --json) list everything.
_MAX_LINES = 12


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _WIDTH else text[:_WIDTH - 1] + "…"


def _collapsed(reasons: list[Reason]) -> list[str]:
    """Reasons sharing one message on one target become one line, so that a run in which every
    check was skipped for the same cause reads as one cause, not forty."""
    buckets: dict[tuple[str, str, str], list[Reason]] = {}
    for reason in reasons:
        buckets.setdefault((reason.target, reason.message, reason.detail), []).append(reason)
    lines = []
    for (target, message, _), members in buckets.items():
        if len(members) < 3:
            lines.extend(r.text() for r in members)
            continue
        names = ", ".join(r.check for r in members[:3])
        more = f" and {len(members) - 3} more" if len(members) > 3 else ""
        lines.append(f"{len(members)} checks [{target}] ({names}{more}): {message}")
    return lines


def _capped(lines: list[str]) -> list[str]:
    if len(lines) <= _MAX_LINES:
        return lines
    return [*lines[:_MAX_LINES - 1], f"… and {len(lines) - _MAX_LINES + 1} more (see --markdown or --json)"]


def terminal_lines(v: Verdict) -> list[tuple[str, str]]:
    """(style, text) lines; style is '', 'verdict', or 'heading'."""
    lines = [("verdict", headline(v))]
    for title, reasons in grouped(v.reasons):
        lines.append(("heading", f"{title}:"))
        lines.extend(("", f"  - {_short(text)}") for text in _capped(_collapsed(reasons)))
    for title, items in sections(v):
        if items:
            lines.append(("heading", f"{title}:"))
            for item, under in items[:_MAX_LINES]:
                lines.append(("", f"  - {_short(item)}"))
                lines.extend(("", f"      {_short(line)}") for line in _capped(under))
            if len(items) > _MAX_LINES:
                lines.append(("", f"  - … and {len(items) - _MAX_LINES} more (see --markdown or --json)"))
    return lines


def print_terminal(v: Verdict, stream: TextIO) -> None:
    """Plain text unless the stream is a terminal (and NO_COLOR is unset)."""
    lines = terminal_lines(v)
    if stream.isatty() and not os.environ.get("NO_COLOR"):
        from rich.console import Console

        console = Console(file=stream, highlight=False, soft_wrap=True)
        styles = {"verdict": "bold green" if v.publish else "bold red", "heading": "bold", "": ""}
        for style, text in lines:
            console.print(text, style=styles[style] or None, markup=False)
        return
    stream.write("".join(f"{text}\n" for _, text in lines))


def _md(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;")


def markdown(v: Verdict) -> str:
    """A Markdown report: verdict, per-target table, reasons, then what was excused or changed."""
    out = [f"# Publication gate: {'PUBLISH' if v.publish else 'HOLD'}", "", _md(headline(v)), ""]
    out += [f"Policy: `{v.policy}`", ""]
    columns = ("passed", "failed", "error", "skipped", "flaky", "excused", "warned", "missing")
    out += ["| Target | " + " | ".join(c for c in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for group in v.targets:
        tally = counts(Verdict(targets=[group]))
        out.append(f"| {_md(group.target.label)} | " + " | ".join(str(tally[c]) for c in columns) + " |")
    out.append("")
    for title, reasons in grouped(v.reasons):
        out += [f"## {title}", ""] + [f"- {_md(r.text())}" for r in reasons] + [""]
    for title, items in sections(v):
        if items:
            out += [f"## {title}", ""]
            for item, under in items:
                out.append(f"- {_md(item)}")
                out.extend(f"  - {_md(line)}" for line in under)
            out.append("")
    out += ["## Files", ""] + [f"- `{f}`" for f in v.files]
    return "\n".join(out) + "\n"

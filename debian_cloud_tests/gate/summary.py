"""Shared wording for the outputs: counts, deny entries and baseline differences as text.

Every output must tell the same story in the same words; only the markup differs.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .baseline import Difference
from .policy import DenyEntry
from .verdict import Excuse, Verdict

_SHOWN = 8


def counts(v: Verdict) -> Counter[str]:
    return Counter(check.status for group in v.targets for check in group.checks.values())


def headline(v: Verdict) -> str:
    """The first line of every output: the verdict, then how much was judged."""
    n_checks = sum(len(g.checks) for g in v.targets)
    tally = ", ".join(f"{n} {status}" for status, n in sorted(counts(v).items()))
    word = "PUBLISH" if v.publish else "HOLD"
    why = "" if v.publish else f" — {_plural(len(v.reasons), 'reason')}"
    return (f"{word}{why} ({_plural(len(v.files), 'file')}, {_plural(len(v.targets), 'target')}, "
            f"{_plural(n_checks, 'check')}: {tally or 'none'})")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def entry_text(entry: DenyEntry, policy: str) -> str:
    where = f"{policy}:{entry.line}" if entry.line else policy
    until = f", expires {entry.expires}" if entry.expires else ""
    return f"{entry.pattern.text} ({entry.tracker}{until}) at {where}"


def excuse_text(excuse: Excuse) -> str:
    until = f" until {excuse.entry.expires}" if excuse.entry.expires else ""
    why = f" — {excuse.entry.reason}" if excuse.entry.reason else ""
    return (f"{excuse.check} [{excuse.target}]: {excuse.status}, known: {excuse.entry.tracker}{until}{why}")


def _names(items: Any) -> str:
    names = list(items)
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" … and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def detail_lines(diff: Difference) -> list[str]:
    """Packages and sockets in words: which ones were added, removed, upgraded."""
    lines = []
    for kind, items in diff.details.items():
        if not items:
            continue
        if isinstance(items, dict):
            shown = (f"{n} {v[0]} → {v[1]}" if isinstance(v, list) else f"{n} {v}" for n, v in items.items())
        else:
            shown = iter(items)
        lines.append(f"{kind}: {_names(shown)}")
    return lines


def value(fact: str, number: Any) -> str:
    if fact == "image_size" and isinstance(number, float | int):
        return f"{number / 2**20:.1f} MiB"
    if fact.endswith("seconds") and isinstance(number, float | int):
        return f"{number:.1f} s"
    if fact in ("packages", "listening_sockets"):
        return f"{number} {'packages' if fact == 'packages' else 'sockets'}"
    return str(number)


def difference_text(diff: Difference) -> str:
    allowed = f"; allowed: {diff.allowed}" if diff.allowed else ""
    verdict = " — HOLDS" if diff.hold else ""
    return (f"{diff.fact} [{diff.target}]: {value(diff.fact, diff.old)} → {value(diff.fact, diff.new)}, "
            f"{diff.change}{allowed}{verdict}")


#: A section item: its line, and the lines shown under it (package names, sockets).
Item = tuple[str, list[str]]


def sections(v: Verdict) -> list[tuple[str, list[Item]]]:
    """The informational sections after the reasons, shared by the terminal and Markdown outputs."""
    def plain(lines: list[str]) -> list[Item]:
        return [(line, []) for line in lines]

    flaky = [f"{f.check} [{f.target}]: {f.history}" + (" (excused)" if f.excused else "") for f in v.flaky]
    return [
        ("Flaky (failed, then passed on a rerun)", plain(flaky)),
        ("Excused by the deny list", plain([excuse_text(e) for e in v.excused if not e.entry.warn])),
        ("Warnings (warn-only deny entries)", plain([excuse_text(e) for e in v.excused if e.entry.warn])),
        ("Stale deny entries (excused nothing)", plain([entry_text(e, v.policy) for e in v.stale])),
        ("Expired deny entries (excuse nothing)", plain([entry_text(e, v.policy) for e in v.expired])),
        ("Baseline differences", [(difference_text(d), detail_lines(d)) for d in v.differences]),
        ("Not compared with the baseline", plain(v.not_compared)),
        ("Notes", plain(v.notes)),
    ]

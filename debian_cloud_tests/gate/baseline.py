"""Comparing the candidate's facts with the last published image's, within policy bounds.

A working image can still be a worse one (bigger, slower to boot, a new open port), so the gate
holds on growth beyond the policy's bounds; a fact missing on either side is only "not compared".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..junitprops import Prop
from . import debversion, junit
from .errors import GateInputError
from .policy import RegressionPolicy
from .scope import Target

#: facts where less is worse: a drop beyond the policy's bound holds, and over reruns the
#: lowest counts
DROPS = (Prop.THROUGHPUT_MBPS,)
NUMERIC = (Prop.IMAGE_SIZE, Prop.BOOT_SECONDS, Prop.CLOUD_INIT_WAIT_SECONDS, *DROPS)
FACT_KEYS = (*NUMERIC, Prop.PACKAGES, Prop.LISTENING_SOCKETS, Prop.PROVIDER, Prop.ARCH)


@dataclass
class Facts:
    """What is known about one image: size, boot times, packages, open sockets."""

    source: str
    provider: str = ""
    arch: str = ""
    numbers: dict[str, float] = field(default_factory=dict)
    packages: dict[str, str] | None = None
    listening_sockets: list[str] | None = None

    def fits(self, target: Target) -> bool:
        """A baseline without provider/arch applies to every target."""
        return all(not mine or mine == theirs
                   for mine, theirs in ((self.provider, target.provider), (self.arch, target.arch)))


@dataclass
class Difference:
    """One fact that changed; `allowed` is the policy's bound in words, `hold` when it is exceeded."""

    target: str
    fact: str
    old: Any
    new: Any
    change: str
    allowed: str = ""
    hold: bool = False
    details: dict[str, Any] = field(default_factory=dict)


def _bad(source: str, name: str, value: Any, expected: str) -> GateInputError:
    return GateInputError(source, f"{name} is {str(value)[:60]!r}, not {expected}",
                          f"record {name} as {expected} or leave it out")


def _number(source: str, name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise _bad(source, name, value, "a number") from None


def _json(source: str, name: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        raise _bad(source, f"property {name}", value, "JSON") from None


def _set_fact(facts: Facts, name: str, value: Any, *, keep_worst: bool = False) -> None:
    if name in NUMERIC:
        number = _number(facts.source, name, value)
        old = facts.numbers.get(name)
        worst = min if name in DROPS else max
        facts.numbers[name] = worst(number, old) if keep_worst and old is not None else number
    elif name == "packages":
        value = _json(facts.source, name, value)
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise _bad(facts.source, name, value, "a JSON object of package name to version")
        facts.packages = value
    elif name == "listening_sockets":
        value = _json(facts.source, name, value)
        if not isinstance(value, list):
            raise _bad(facts.source, name, value, "a JSON list")
        facts.listening_sockets = sorted(v if isinstance(v, str) else json.dumps(v, sort_keys=True)
                                         for v in value)
    elif name in ("provider", "arch"):
        setattr(facts, name, str(value))


def from_runs(runs: list[junit.Run], source: str) -> Facts:
    """Facts of one target; over reruns the slowest boot (the lowest throughput) counts, so a
    rerun cannot hide one."""
    facts = Facts(source)
    for run in runs:
        for name in FACT_KEYS:
            if run.prop(name):
                _set_fact(facts, name, run.prop(name), keep_worst=True)
    return facts


def load(path: Path) -> list[Facts]:
    """Baseline facts from a JSON facts file or from the published image's JUnit report."""
    source = str(path)
    if path.suffix != ".json":
        groups: dict[tuple[str, str], list[junit.Run]] = {}
        for run in junit.parse(path):
            groups.setdefault((run.prop(Prop.PROVIDER), run.prop(Prop.ARCH)), []).append(run)
        return [from_runs(runs, source) for runs in groups.values()]
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GateInputError(source, "no such baseline file", "check the --baseline path") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        line = getattr(exc, "lineno", None)
        raise GateInputError(source, f"unreadable baseline facts ({exc})",
                             "write a JSON object such as {\"image_size\": 1234, \"boot_seconds\": 9.5}",
                             line=line) from None
    items = doc if isinstance(doc, list) else [doc]
    result = []
    for item in items:
        if not isinstance(item, dict):
            raise _bad(source, "a baseline entry", item, "a JSON object")
        facts = Facts(source)
        for name, value in item.items():
            if name not in FACT_KEYS:
                raise GateInputError(source, f"unknown fact {name!r}", f"valid facts: {', '.join(FACT_KEYS)}")
            _set_fact(facts, name, value)
        result.append(facts)
    return result


def _bounded(label: str, old: float, new: float, pct: float | None, absolute: float | None,
             unit: str) -> Difference:
    """Growth holds only when it exceeds every bound set: the absolute bound filters out noise."""
    grew = new - old
    rel = grew / old * 100 if old else (0.0 if not grew else float("inf"))
    exceeded: list[bool] = []
    limits: list[str] = []
    if pct is not None:
        exceeded.append(grew > old * pct / 100)
        limits.append(f"+{pct:g}%")
    if absolute is not None:
        exceeded.append(grew > absolute)
        limits.append(f"+{absolute:g}{unit}")
    shown = f"{grew:+.1f}{unit}" if unit else f"{grew / 2**20:+.1f} MiB"
    allowed = f"at most {' or '.join(limits)}" if limits else ""
    return Difference("", label, old, new, f"{shown} ({rel:+.0f}%)", allowed,
                      hold=bool(exceeded) and all(exceeded))


def _dropped(label: str, old: float, new: float, pct: float | None, unit: str) -> Difference:
    """A fact where less is worse: a drop holds when it exceeds the bound set."""
    change = new - old
    rel = change / old * 100 if old else 0.0
    return Difference("", label, old, new, f"{change:+.1f}{unit} ({rel:+.0f}%)",
                      f"a drop of at most {pct:g}%" if pct is not None else "",
                      hold=pct is not None and -change > old * pct / 100)


def _packages(old: dict[str, str], new: dict[str, str], mode: str) -> Difference | None:
    added = {n: v for n, v in new.items() if n not in old}
    removed = {n: v for n, v in old.items() if n not in new}
    moved = {n: (old[n], new[n]) for n in old.keys() & new.keys() if old[n] != new[n]}
    upgraded = {n: list(v) for n, v in sorted(moved.items()) if debversion.compare(*v) < 0}
    downgraded = {n: list(v) for n, v in sorted(moved.items()) if debversion.compare(*v) > 0}
    if not (added or removed or moved):
        return None
    details = {"added": dict(sorted(added.items())), "removed": dict(sorted(removed.items())),
               "upgraded": upgraded, "downgraded": downgraded}
    change = ", ".join(f"{len(v)} {k}" for k, v in details.items() if v)
    return Difference("", "packages", len(old), len(new), change,
                      "no removed packages" if mode == "hold-removed" else "",
                      hold=bool(removed) and mode == "hold-removed", details=details)


def _sockets(old: list[str], new: list[str], mode: str) -> Difference | None:
    opened, closed = sorted(set(new) - set(old)), sorted(set(old) - set(new))
    if not (opened or closed):
        return None
    change = ", ".join(f"{len(v)} {k}" for k, v in (("new", opened), ("gone", closed)) if v)
    return Difference("", "listening_sockets", len(old), len(new), change,
                      "no new listening sockets" if mode == "hold-new" else "",
                      hold=bool(opened) and mode == "hold-new", details={"new": opened, "gone": closed})


def compare(old: Facts, new: Facts, bounds: RegressionPolicy, target: str
            ) -> tuple[list[Difference], list[str]]:
    """The differences between baseline and candidate, and the facts that could not be compared."""
    diffs: list[Difference | None] = []
    missing: list[str] = []
    rules = {"image_size": (bounds.image_size_pct, None, ""),
             "boot_seconds": (bounds.boot_seconds_pct, bounds.boot_seconds_abs, " s"),
             "cloud_init_wait_seconds": (bounds.cloud_init_seconds_pct, bounds.cloud_init_seconds_abs, " s")}
    for name, (pct, absolute, unit) in rules.items():
        if name not in old.numbers or name not in new.numbers:
            side = "baseline" if name not in old.numbers else "results"
            missing.append(f"{name}: missing in the {side}")
        elif old.numbers[name] != new.numbers[name]:
            diffs.append(_bounded(name, old.numbers[name], new.numbers[name], pct, absolute, unit))
    for name, pct, unit in ((Prop.THROUGHPUT_MBPS.value, bounds.throughput_drop_pct, " Mbit/s"),):
        before, after = old.numbers.get(name), new.numbers.get(name)
        if before is None and after is None:
            continue  # measured by neither run (the suite is not run everywhere)
        if before is None or after is None:
            missing.append(f"{name}: missing in the {'baseline' if before is None else 'results'}")
        elif before != after:
            diffs.append(_dropped(name, before, after, pct, unit))
    for name, differ, mode in (("packages", _packages, bounds.packages),
                               ("listening_sockets", _sockets, bounds.listening_sockets)):
        before, after = getattr(old, name), getattr(new, name)
        if before is None or after is None:
            missing.append(f"{name}: missing in the {'baseline' if before is None else 'results'}")
        else:
            diffs.append(differ(before, after, mode))
    found = [d for d in diffs if d is not None]
    for diff in found:
        diff.target = target
    return found, missing

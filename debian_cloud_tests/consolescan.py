"""Trouble on the console: panics, oopses, call traces, segfaults, OOM kills, failed units,
and the kernel's and systemd's watchdogs (soft and hard lockups, RCU stalls, hung tasks, a
service's watchdog timeout): a machine that stalled is not healthy because it came back.

A table of patterns, as data, applied to the whole console log of a machine; an allowlist of
regexes excuses known-harmless lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .console import clean


@dataclass(frozen=True)
class Pattern:
    name: str
    regex: re.Pattern[str]


PATTERNS: tuple[Pattern, ...] = (
    Pattern("kernel panic", re.compile(r"Kernel panic - not syncing")),
    Pattern("oops", re.compile(r"\bOops(?::| -)|\bBUG: (?:unable to handle|kernel NULL|scheduling)")),
    Pattern("call trace", re.compile(r"\bCall Trace:")),
    Pattern("segfault", re.compile(r"\bsegfault at [0-9a-f]+ ip\b|\btraps: .* general protection")),
    Pattern("oom kill", re.compile(r"invoked oom-killer|Out of memory: Killed process")),
    Pattern("failed unit", re.compile(r"\[FAILED\] Failed to start|Failed to start .*\.service")),
    Pattern("emergency mode", re.compile(r"You are in emergency mode|Welcome to emergency mode")),
    Pattern("soft lockup", re.compile(r"\bBUG: soft lockup - CPU#\d+ stuck for")),
    Pattern("hard lockup", re.compile(r"\bWatchdog detected hard LOCKUP on cpu")),
    Pattern("rcu stall", re.compile(r"\bINFO: rcu_\w+ (?:self-)?detected stalls?\b")),
    Pattern("hung task", re.compile(r"\bINFO: task \S+ blocked for more than \d+ seconds")),
    Pattern("watchdog timeout", re.compile(r"\bWatchdog timeout \(limit [^)]*\)!")),
)


def load_allowlist(path: Path) -> list[re.Pattern[str]]:
    entries = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            entries.append(re.compile(line))
    return entries


def scan(console: str, allowlist: list[re.Pattern[str]] | None = None) -> list[tuple[str, str]]:
    """Every (pattern name, line) found on the console and not excused by the allowlist."""
    found = []
    for line in clean(console).splitlines():
        for pattern in PATTERNS:
            if pattern.regex.search(line) and not any(a.search(line) for a in allowlist or []):
                found.append((pattern.name, line.strip()[:240]))
                break
    return found

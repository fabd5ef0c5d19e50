"""What a run covered and how it ended, written into its own JUnit report.

A report only lists what ran: a run cut short (a signal, a crash, -x) or narrowed (-k, -m,
--ignore, --deselect, a path) reads like a smaller passing run.  So the plugin records how many
tests were collected and selected, by which filter, which suites lost tests to it, and how the
session ended, as suite properties; the gate holds a run that did not test everything unless its
policy accepts the filter (docs/gate.md, "Completeness").
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from . import interrupts
from .junitprops import Prop

#: Properties every report of the plugin carries; the gate holds one of ours that lacks any.
REQUIRED = ("tests_collected", "tests_selected", "tests_deselected", "exit_status", "interrupted")


@dataclass
class Tally:
    """Collected during the session; written as properties just before the JUnit file is."""

    deselected: Counter[str] = field(default_factory=Counter)  # suite ("" outside the suites) → count
    selected: Counter[str] = field(default_factory=Counter)

    def deselect(self, suites: Iterable[str]) -> None:
        self.deselected.update(suites)

    def select(self, suites: Iterable[str]) -> None:
        self.selected = Counter(suites)


def _inside(path: str, root: Path) -> str | None:
    """*path* relative to the suites directory, or None when it is elsewhere."""
    try:
        return Path(path.split("::", 1)[0]).resolve().relative_to(root).as_posix()
    except ValueError:
        return None


def filtered_suites(tally: Tally, root: Path, available: Iterable[str], args: Iterable[str],
                    ignored: Iterable[str]) -> list[str]:
    """Suites that lost tests to a filter: some deselected, none collected (left out by --ignore
    or by the paths given), or only part of them named by a path or ignored."""
    lost = {suite for suite, n in tally.deselected.items() if suite and n}
    collected = set(tally.selected) | set(tally.deselected)
    lost |= {suite for suite in available if suite not in collected}
    for path in (*args, *ignored):
        inside = _inside(path, root)
        if inside and inside != ".":
            parts = inside.split("/")
            if len(parts) > 1 or "::" in path or path in ignored:
                lost.add(parts[0])
    return sorted(lost)


def properties(tally: Tally, *, exit_status: int, interrupted: bool, signal: str, stopped: str,
               keyword: str, markers: str, ignored: list[str],
               suites: Callable[[], tuple[list[str], dict[str, int]]] | None) -> dict[str, str]:
    """The completeness record; *suites* gives the suites that lost tests and the tests selected
    per suite, for a run of the plugin's suites."""
    selected, deselected = sum(tally.selected.values()), sum(tally.deselected.values())
    props = {Prop.TESTS_COLLECTED: str(selected + deselected), Prop.TESTS_SELECTED: str(selected),
             Prop.TESTS_DESELECTED: str(deselected), Prop.EXIT_STATUS: str(exit_status),
             Prop.INTERRUPTED: "yes" if interrupted else "no"}
    optional = {Prop.STOP_SIGNAL: signal, Prop.STOPPED_EARLY: stopped, Prop.FILTER_KEYWORD: keyword,
                Prop.FILTER_MARKERS: markers, Prop.FILTER_IGNORED: " ".join(ignored)}
    props.update({k: v for k, v in optional.items() if v})
    if suites is not None:
        lost, per_suite = suites()
        props[Prop.SUITES_SELECTED] = json.dumps(per_suite, sort_keys=True)
        if lost:
            props[Prop.SUITES_FILTERED] = ",".join(lost)
    return props


class Recorder:
    """The plugin's hooks for the record.  It is written in a `tryfirst` pytest_sessionfinish:
    pytest's junitxml writes the file in its own pytest_sessionfinish, so the session's end is
    known, and properties added after it would be lost."""

    def __init__(self, suite_of: Callable[[pytest.Item], str], root: Path | None,
                 exit_status: Callable[[pytest.Session], int]) -> None:
        self.tally = Tally()
        self.suite_of = suite_of
        self.root = root  # the suites' directory, for a run of the plugin's suites
        self.exit_status = exit_status

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.tally.deselect(self.suite_of(item) for item in items)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.tally.select(self.suite_of(item) for item in session.items)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        from _pytest.junitxml import xml_key  # where record_testsuite_property writes, too

        xml: Any = session.config.stash.get(xml_key, None)
        if xml is None:
            return
        config = session.config
        status = self.exit_status(session)
        ignored = [*(config.getoption("ignore", None) or ()), *(config.getoption("ignore_glob", None) or ()),
                   *(config.getoption("deselect", None) or ())]
        root = self.root

        def suites() -> tuple[list[str], dict[str, int]]:
            assert root is not None
            available = sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob("test_*.py")))
            args = [str(a) for a in config.args]
            lost = filtered_suites(self.tally, root, available, args, ignored)
            return lost, {s: n for s, n in sorted(self.tally.selected.items()) if s}

        stopped = session.shouldfail or session.shouldstop
        for name, value in properties(
                self.tally, exit_status=status,
                interrupted=interrupts.requested() or status == pytest.ExitCode.INTERRUPTED,
                signal=interrupts.signal_name(), stopped=str(stopped) if stopped else "",
                keyword=config.getoption("keyword", "") or "", markers=config.getoption("markexpr", "") or "",
                ignored=[str(i) for i in ignored], suites=suites if root is not None else None).items():
            xml.add_global_property(name, value)

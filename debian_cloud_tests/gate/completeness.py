"""Whether a run tested everything: ended on its own, reported every selected test, unfiltered.

A report lists only what ran, so a run cut short or narrowed by -k, -m, --ignore or a path reads
like a smaller passing run.  The plugin records its completeness as suite properties
(debian_cloud_tests/completeness.py); a run that did not complete holds, and so does a filtered
one unless an [[accept_filter]] entry accepts that filter for that target.  Reports of other
producers carry no record: they are judged by the policy's requirements alone (docs/gate.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..junitprops import Prop
from .junit import Run
from .policy import AcceptFilter
from .scope import Target

#: The record every report of the plugin carries (as debian_cloud_tests.completeness.REQUIRED).
REQUIRED = (Prop.TESTS_COLLECTED, Prop.TESTS_SELECTED, Prop.TESTS_DESELECTED, Prop.EXIT_STATUS,
            Prop.INTERRUPTED)
#: pytest's exit statuses of a session that ran to its end: all passed, some failed.
FINISHED = ("0", "1")


def ours(run: Run) -> bool:
    """A report of the plugin: it names the plugin's version, or carries part of the record."""
    return bool(run.prop(Prop.DCT_VERSION)) or any(run.prop(k) for k in REQUIRED)


def _int(run: Run, name: str) -> int | None:
    try:
        return int(run.prop(name))
    except ValueError:
        return None


def _suites_short(run: Run) -> list[str]:
    """Suites with fewer test cases in the report than tests selected in the run."""
    try:
        selected = json.loads(run.prop(Prop.SUITES_SELECTED) or "{}")
    except json.JSONDecodeError:
        return ["suites_selected is not JSON"]
    if not isinstance(selected, dict):
        return ["suites_selected is not a JSON object"]
    short = []
    for suite, wanted in sorted(selected.items()):
        found = sum(1 for case in run.cases if case.suite == suite)
        if not isinstance(wanted, int) or found < wanted:
            short.append(f"suite {suite}: {found} of {wanted} selected tests reported")
    return short


def problems(run: Run) -> list[str]:
    """Why a run of the plugin did not complete; empty when it did."""
    missing = [k for k in REQUIRED if not run.prop(k)]
    if missing:
        return [f"no completeness record ({', '.join(missing)} missing): it cannot be shown to "
                "have run to its end"]
    found: list[str] = []
    status = run.prop(Prop.EXIT_STATUS)
    if status not in FINISHED:
        found.append(f"pytest exited {status}")
    if run.prop(Prop.INTERRUPTED) != "no":
        signal = run.prop(Prop.STOP_SIGNAL)
        found.append(f"interrupted{f' by {signal}' if signal else ''}")
    if run.prop(Prop.STOPPED_EARLY):
        found.append(f"stopped early ({run.prop(Prop.STOPPED_EARLY)})")
    selected = _int(run, Prop.TESTS_SELECTED)
    if selected is None:
        found.append(f"tests_selected is {run.prop(Prop.TESTS_SELECTED)!r}, not a number")
    elif len(run.cases) < selected:
        found.append(f"{len(run.cases)} of {selected} selected tests reported")
    found.extend(_suites_short(run))
    return found


@dataclass(frozen=True)
class Filter:
    """How a run was narrowed; empty when it ran everything it collected."""

    deselected: int = 0
    keyword: str = ""
    markers: str = ""
    ignored: str = ""
    suites: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.deselected or self.keyword or self.markers or self.ignored or self.suites)

    def describe(self) -> str:
        parts = [f"-k {self.keyword!r}" if self.keyword else "",
                 f"-m {self.markers!r}" if self.markers else "",
                 f"ignored {self.ignored}" if self.ignored else "",
                 f"{self.deselected} tests deselected" if self.deselected else "",
                 f"suites that lost tests: {', '.join(self.suites)}" if self.suites else ""]
        return ", ".join(p for p in parts if p)


def run_filter(run: Run) -> Filter:
    suites = tuple(s for s in run.prop(Prop.SUITES_FILTERED).split(",") if s)
    return Filter(_int(run, Prop.TESTS_DESELECTED) or 0, run.prop(Prop.FILTER_KEYWORD),
                  run.prop(Prop.FILTER_MARKERS), run.prop(Prop.FILTER_IGNORED), suites)


def acceptance(found: Filter, run: Run, target: Target, entries: tuple[AcceptFilter, ...]
               ) -> tuple[int, AcceptFilter] | None:
    """The first entry that accepts this filter on this target: every suite that lost tests is
    one it names, and each expression used is the one it names.  Without the record of which
    suites lost tests (`suites_selected`), a filter cannot be shown to be harmless."""
    if not run.prop(Prop.SUITES_SELECTED):
        return None
    for index, entry in enumerate(entries):
        if (entry.target.matches(target) and set(found.suites) <= set(entry.suites)
                and (not found.keyword or found.keyword == entry.keyword)
                and (not found.markers or found.markers == entry.markers)):
            return index, entry
    return None

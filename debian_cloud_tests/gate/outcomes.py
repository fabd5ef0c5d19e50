"""Merging runs into targets and attempts into one outcome per check.

Reruns (in the same report or in a later one) are further attempts of the same check on the same
target; a failure followed by a pass is flaky, not passed, and is always shown.  Instances tested
together (`run --instances N`: the runs share a `parallel_run` property) are not retries of one
another: their results on a check make one attempt, the worst of them.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from ..junitprops import Prop
from .junit import ERROR, FAILED, PASSED, SKIPPED, Attempt, Run
from .scope import Target, run_target

FLAKY, EXCUSED, WARNED, MISSING = "flaky", "excused", "warned", "missing"
#: Worst first: how a check's status across several targets is summed up.
SEVERITY = (FAILED, ERROR, MISSING, SKIPPED, FLAKY, WARNED, EXCUSED, PASSED)


@dataclass
class CheckResult:
    """The outcome of one check on one target, with every attempt that led to it."""

    check_id: str
    status: str
    message: str
    attempts: list[Attempt]
    sources: list[str]
    retried_error: str = ""

    @property
    def history(self) -> str:
        return ", ".join(a.status for a in self.attempts)


@dataclass
class TargetResults:
    target: Target
    runs: list[Run] = field(default_factory=list)
    checks: dict[str, CheckResult] = field(default_factory=dict)

    @property
    def ran(self) -> int:
        """Checks that actually executed: skipped ones do not count, so all-skipped is zero tests."""
        return sum(1 for c in self.checks.values() if c.status not in (SKIPPED, MISSING))


def _instant(stamp: str) -> dt.datetime:
    """A suite timestamp as an instant: runners in other time zones write other offsets, and a
    time without one is taken as UTC, so that any two are comparable."""
    when = dt.datetime.fromisoformat(stamp)
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _ordered(runs: list[Run]) -> list[Run]:
    """Runs in time order when every run has a timestamp, else in the order given."""
    try:
        stamps = [_instant(r.timestamp) for r in runs]
        return [run for _, _, run in sorted(zip(stamps, range(len(runs)), runs, strict=True))]
    except (ValueError, TypeError):
        return runs


def _together(runs: list[Run]) -> list[list[Run]]:
    """Runs launched together (one `parallel_run`) as one batch, each other run alone; batches
    in the order of their first run."""
    batches: dict[str, list[Run]] = {}
    for i, run in enumerate(runs):
        batches.setdefault(run.prop(Prop.PARALLEL_RUN) or f"\0{i}", []).append(run)
    return list(batches.values())


def _classify(attempt: Attempt, patterns: tuple[re.Pattern[str], ...]) -> Attempt:
    if attempt.status == FAILED and any(p.search(attempt.message) for p in patterns):
        return Attempt(ERROR, attempt.message, reclassified=True)
    return attempt


def _decide(check_id: str, attempts: list[Attempt], sources: list[str]) -> CheckResult:
    ran = [a for a in attempts if a.status != SKIPPED]
    if not ran:
        return CheckResult(check_id, SKIPPED, attempts[-1].message, attempts, sources)
    final, before = ran[-1], ran[:-1]
    if final.status != PASSED:
        return CheckResult(check_id, final.status, final.message, attempts, sources)
    # a failure the policy reads as provider trouble still failed: a later pass makes it flaky
    failed = [a for a in before if a.status == FAILED or a.reclassified]
    if failed:
        return CheckResult(check_id, FLAKY, failed[-1].message, attempts, sources)
    errors = [a for a in before if a.status == ERROR and not a.reclassified]
    return CheckResult(check_id, PASSED, "", attempts, sources, errors[-1].message if errors else "")


def _labelled(attempt: Attempt, label: str) -> Attempt:
    """The attempt's message prefixed with its instance's label, for a batch of several."""
    if not label or not attempt.message:
        return attempt
    return Attempt(attempt.status, f"{label}: {attempt.message}", attempt.reclassified)


def _batch(siblings: list[Run], patterns: tuple[re.Pattern[str], ...]
           ) -> dict[str, tuple[list[Attempt], Attempt, list[str]]]:
    """Per check of one batch: every run's earlier tries, the worst of the runs' finals (the
    batch's one attempt), and the reports it came from."""
    earlier: dict[str, list[Attempt]] = {}
    finals: dict[str, list[Attempt]] = {}
    sources: dict[str, list[str]] = {}
    for run in siblings:
        label = run.prop(Prop.PARALLEL_LABEL) if len(siblings) > 1 else ""
        for case in run.cases:
            *before, final = (_classify(a, patterns) for a in (*case.earlier, case.final))
            earlier.setdefault(case.check_id, []).extend(before)
            finals.setdefault(case.check_id, []).append(_labelled(final, label))
            sources.setdefault(case.check_id, []).append(run.source)
    return {cid: (earlier[cid], min(ends, key=lambda a: SEVERITY.index(a.status)), sources[cid])
            for cid, ends in finals.items()}


def _grouped(runs: list[Run]) -> list[TargetResults]:
    """Runs by the target they tested, each target with the releases any of its runs named."""
    groups: dict[tuple[str, str, str, str], TargetResults] = {}
    for run in runs:
        target = run_target(run)
        group = groups.setdefault(target.key, TargetResults(target))
        group.runs.append(run)
        group.target = Target(*target.key, releases=group.target.releases | target.releases)
    return list(groups.values())


def by_target(runs: list[Run], provider_patterns: tuple[re.Pattern[str], ...] = ()) -> list[TargetResults]:
    """Group runs by what they tested and decide every check of every target."""
    groups = _grouped(runs)
    for group in groups:
        attempts: dict[str, list[Attempt]] = {}
        sources: dict[str, list[str]] = {}
        for siblings in _together(_ordered(group.runs)):
            for cid, (before, final, came_from) in _batch(siblings, provider_patterns).items():
                attempts.setdefault(cid, []).extend([*before, final])
                sources.setdefault(cid, []).extend(came_from)
        group.checks = {cid: _decide(cid, tries, sources[cid]) for cid, tries in attempts.items()}
    return groups


def worst(statuses: list[str]) -> str:
    return min(statuses, key=SEVERITY.index)

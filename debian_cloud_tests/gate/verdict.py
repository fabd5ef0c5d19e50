"""Deciding publish or hold: every reason to hold is collected, none stops the search early.

The decision is separate from rendering so that the terminal, Markdown, JSON and JUnit outputs
all tell the same story, and so that each rule can be tested on hand-made results.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from . import baseline, completeness, properties
from . import registered as registered_copies
from .baseline import Difference, Facts
from .junit import ERROR, FAILED, SKIPPED, Run
from .outcomes import EXCUSED, FLAKY, MISSING, WARNED, CheckResult, TargetResults, by_target, worst
from .policy import DenyEntry, Policy
from .reasons import Kind, Reason

__all__ = ["Excuse", "Flaky", "Reason", "Verdict", "evaluate"]

#: How the plugin words a skip decided from the run's provider/arch/firmware (applicability.py).
NOT_APPLICABLE = "not applicable"


@dataclass
class Excuse:
    """A failed or flaky check that a deny entry excused (or, with warn = true, only warned about)."""

    check: str
    target: str
    status: str
    message: str
    entry: DenyEntry


@dataclass
class Flaky:
    check: str
    target: str
    history: str
    message: str
    excused: bool = False


@dataclass
class Verdict:
    publish: bool = False
    reasons: list[Reason] = field(default_factory=list)
    targets: list[TargetResults] = field(default_factory=list)
    excused: list[Excuse] = field(default_factory=list)
    stale: list[DenyEntry] = field(default_factory=list)
    expired: list[DenyEntry] = field(default_factory=list)
    flaky: list[Flaky] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    not_compared: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    policy: str = ""

    def hold(self, reason: Reason) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)

    def statuses(self) -> dict[str, str]:
        """Each check's status, the worst over all targets it ran on."""
        seen: dict[str, list[str]] = {}
        for group in self.targets:
            for cid, check in group.checks.items():
                seen.setdefault(cid, []).append(check.status)
        return {cid: worst(found) for cid, found in sorted(seen.items())}


def _excuse(group: TargetResults, policy: Policy, today: dt.date, v: Verdict,
            applicable: set[int], used: set[int]) -> dict[str, DenyEntry]:
    """Apply the deny list to one target; returns the expired entries that would have matched."""
    label = group.target.label
    lapsed: dict[str, DenyEntry] = {}
    for index, entry in enumerate(policy.deny):
        if entry.scope.matches(group.target, unknown=False):
            applicable.add(index)
    for check in group.checks.values():
        if check.status not in (FAILED, FLAKY):
            continue
        for index, entry in enumerate(policy.deny):
            if index not in applicable or not entry.pattern.matches(check.check_id):
                continue
            if entry.expired(today):
                lapsed.setdefault(check.check_id, entry)
                continue
            used.add(index)
            v.excused.append(Excuse(check.check_id, label, check.status, check.message, entry))
            if check.status == FLAKY:
                v.flaky.append(Flaky(check.check_id, label, check.history, check.message, excused=True))
            check.status = WARNED if entry.warn else EXCUSED
            break
    return lapsed


def _results(group: TargetResults, lapsed: dict[str, DenyEntry], v: Verdict) -> None:
    label = group.target.label
    if not group.checks:
        v.hold(Reason(Kind.NO_TESTS, "the report has no test cases", label))
    elif group.ran == 0:
        v.hold(Reason(Kind.NO_TESTS, f"no test ran ({len(group.checks)} skipped)", label))
    for check in group.checks.values():
        entry = lapsed.get(check.check_id)
        detail = f"deny entry expired on {entry.expires} ({entry.tracker})" if entry else ""
        if check.status == FAILED:
            v.hold(Reason(Kind.FAILED, check.message or "failed", label, check.check_id, detail))
        elif check.status == ERROR:
            v.hold(Reason(Kind.COULD_NOT_TEST, check.message or "error", label, check.check_id))
        elif check.status == FLAKY:
            v.flaky.append(Flaky(check.check_id, label, check.history, check.message))
        if check.retried_error:
            v.notes.append(f"{check.check_id} [{label}]: passed after a provider error "
                           f"({check.retried_error})")


def _skip_excused(check: CheckResult, named: bool) -> bool:
    """A check the suite itself declared not applicable here is no hold for a suite or a wildcard
    requirement; a check the policy names explicitly must run, whatever the reason for a skip."""
    return not named and check.message.startswith(NOT_APPLICABLE)


def _required(group: TargetResults, policy: Policy, v: Verdict) -> None:
    """Required checks must have run and not been skipped; zero matching checks is a hold."""
    label = group.target.label
    checks = group.checks
    for rule in policy.required:
        if not rule.scope.matches(group.target, unknown=True):
            continue
        wanted: list[tuple[str, str, bool, list[CheckResult]]] = [
            (f"suite {suite}", "required suite, but none of its checks ran", False,
             [c for c in checks.values() if c.check_id.split(".", 1)[0] == suite])
            for suite in rule.suites]
        for pattern in rule.checks:
            found = [c for c in checks.values() if pattern.matches(c.check_id)]
            if not found and pattern.literal:
                checks[pattern.text] = CheckResult(pattern.text, MISSING, "did not run", [], [])
            why = "required check, but it did not run" if pattern.literal else \
                "required, but no check matching it ran"
            wanted.append((pattern.text, why, pattern.literal, found))
        for name, why, named, found in wanted:
            skipped = sum(c.status == SKIPPED for c in found)
            if all(c.status in (SKIPPED, MISSING) for c in found) and not (named and skipped):
                v.hold(Reason(Kind.MISSING, f"{why} ({skipped} skipped)" if skipped else why, label, name))
            for check in found:
                if check.status == SKIPPED and not _skip_excused(check, named):
                    v.hold(Reason(Kind.SKIPPED, f"required but skipped: {check.message or 'no reason given'}",
                                  label, check.check_id))


def _completeness(group: TargetResults, policy: Policy, v: Verdict) -> None:
    """One line per run of the plugin that did not complete, or was filtered in a way no
    [[accept_filter]] entry accepts for its target."""
    label = group.target.label
    for run in group.runs:
        if not completeness.ours(run):
            continue
        found = completeness.problems(run)
        narrowed = completeness.run_filter(run)
        if narrowed and not found:
            accepted = completeness.acceptance(narrowed, run, group.target, policy.accept_filters)
            if accepted is None:
                found.append(f"filtered ({narrowed.describe()}) and no [[accept_filter]] accepts it here")
            else:
                index, entry = accepted
                v.notes.append(f"{run.source} [{label}]: filtered ({narrowed.describe()}), accepted by "
                               f"[[accept_filter]] #{index + 1}: {entry.reason}")
        elif narrowed:
            found.append(f"filtered ({narrowed.describe()})")
        if found:
            v.hold(Reason(Kind.INCOMPLETE, f"{run.source}: {'; '.join(found)}", label))


def _targets(groups: list[TargetResults], policy: Policy, v: Verdict) -> None:
    for wanted in policy.require_targets:
        if not any(wanted.matches(group.target) for group in groups):
            v.hold(Reason(Kind.MISSING_TARGET, f"no results for the required target {wanted.label} "
                          "(provider/arch/firmware/image_type)"))


def _flaky_limits(policy: Policy, v: Verdict) -> None:
    counted = [f for f in v.flaky if not f.excused]
    if not policy.flaky.allowed:
        for flaky in counted:
            v.hold(Reason(Kind.FLAKY, f"flaky ({flaky.history}) and the policy forbids flaky checks",
                          flaky.target, flaky.check))
    elif policy.flaky.max is not None and len(counted) > policy.flaky.max:
        v.hold(Reason(Kind.FLAKY, f"{len(counted)} flaky checks, more than the {policy.flaky.max} allowed"))


def _regressions(groups: list[TargetResults], baselines: list[Facts], policy: Policy, v: Verdict) -> None:
    for group in groups:
        label = group.target.label
        old = next((facts for facts in baselines if facts.fits(group.target)), None)
        if old is None:
            v.not_compared.append(f"{label}: no baseline for this provider/arch")
            continue
        new = baseline.from_runs(group.runs, ", ".join(dict.fromkeys(r.source for r in group.runs)))
        diffs, missing = baseline.compare(old, new, policy.regression, label)
        v.differences.extend(diffs)
        v.not_compared.extend(f"{label}: {m}" for m in missing)
        for diff in diffs:
            if diff.hold:
                v.hold(Reason(Kind.REGRESSION, f"{diff.change}; allowed: {diff.allowed}", label, diff.fact))


def evaluate(runs: list[Run], policy: Policy, *, today: dt.date, image_sha256: tuple[str, ...] = (),
             baselines: list[Facts] | None = None,
             registered: tuple[tuple[str, str], ...] = ()) -> Verdict:
    """Judge the runs against the policy; the verdict publishes only when no reason holds it."""
    v = Verdict(files=list(dict.fromkeys(r.source for r in runs)), policy=policy.source)
    v.targets = by_target(runs, policy.provider_error_patterns)
    applicable: set[int] = set()
    used: set[int] = set()
    for group in v.targets:
        lapsed = _excuse(group, policy, today, v, applicable, used)
        _results(group, lapsed, v)
        _completeness(group, policy, v)
        _required(group, policy, v)
    _targets(v.targets, policy, v)
    _flaky_limits(policy, v)
    v.expired = [e for e in policy.deny if e.expired(today)]
    v.stale = [entry for i, entry in enumerate(policy.deny)
               if i in applicable and i not in used and not entry.expired(today)]
    for reason in properties.problems(runs, policy.properties, image_sha256):
        v.hold(reason)
    for reason in registered_copies.problems(runs, registered, policy.accept_untested):
        v.hold(reason)
    if baselines:
        _regressions(v.targets, baselines, policy, v)
    v.publish = not v.reasons
    return v

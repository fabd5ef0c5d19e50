"""The machine outputs: a JSON document with a stable schema, and a merged JUnit report.

Pipelines read the JSON (its keys never change meaning; SCHEMA_VERSION grows when keys are
added); GitLab renders the merged JUnit in the merge request's test report.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from junit_xml import TestCase, TestSuite, to_xml_report_string

from .junit import ERROR, FAILED, SKIPPED
from .outcomes import EXCUSED, MISSING, WARNED
from .policy import DenyEntry
from .summary import detail_lines, difference_text, headline
from .verdict import Verdict

SCHEMA_VERSION = 1


def _entry(entry: DenyEntry, policy: str) -> dict[str, Any]:
    return {"id": entry.pattern.text, "match": entry.pattern.kind, "tracker": entry.tracker,
            "reason": entry.reason, "expires": entry.expires.isoformat() if entry.expires else None,
            "warn": entry.warn, "scope": entry.scope.describe(), "policy": policy, "line": entry.line}


def to_json(v: Verdict) -> dict[str, Any]:
    """The verdict as plain data; see docs/gate.md for the schema."""
    return {
        "schema_version": SCHEMA_VERSION,
        "verdict": "publish" if v.publish else "hold",
        "summary": headline(v),
        "reasons": [asdict(r) for r in v.reasons],
        "checks": v.statuses(),
        "targets": {g.target.label: {
            "provider": g.target.provider, "arch": g.target.arch, "firmware": g.target.firmware,
            "image_type": g.target.image_type, "releases": sorted(g.target.releases),
            "files": list(dict.fromkeys(r.source for r in g.runs)),
            "checks": {cid: c.status for cid, c in sorted(g.checks.items())}} for g in v.targets},
        "excused": [{"check": e.check, "target": e.target, "status": e.status, "message": e.message,
                     **_entry(e.entry, v.policy)} for e in v.excused],
        "stale": [_entry(e, v.policy) for e in v.stale],
        "expired": [_entry(e, v.policy) for e in v.expired],
        "flaky": [asdict(f) for f in v.flaky],
        "regressions": [asdict(d) for d in v.differences],
        "not_compared": v.not_compared,
        "notes": v.notes,
        "files": v.files,
        "policy": v.policy,
    }


def json_text(v: Verdict) -> str:
    return json.dumps(to_json(v), indent=2, sort_keys=False) + "\n"


def junit_text(v: Verdict) -> str:
    """One suite per target with one case per check, plus a 'gate' suite carrying the verdict."""
    held = {(r.target, r.check): r.message for r in v.reasons}
    suites = []
    for group in v.targets:
        label = group.target.label
        cases = []
        for cid, check in sorted(group.checks.items()):
            case = TestCase(cid, classname=f"{label}.{cid.split('.', 1)[0]}",
                            stdout=f"attempts: {check.history}" if len(check.attempts) > 1 else None)
            reason = held.get((label, cid))
            if check.status == ERROR:
                case.add_error_info(f"could not test: {check.message}", error_type="provider")
            elif check.status in (FAILED, MISSING) or reason:
                case.add_failure_info(reason or check.message or check.status, failure_type=check.status)
            elif check.status == SKIPPED:
                case.add_skipped_info(check.message or "skipped")
            elif check.status in (EXCUSED, WARNED):
                excuse = next(e for e in v.excused if e.check == cid and e.target == label)
                case.add_skipped_info(f"{check.status}: {excuse.entry.tracker} ({check.message})")
            cases.append(case)
        suites.append(TestSuite(f"gate {label}", cases))
    verdict = TestCase("verdict", classname="gate", stdout=headline(v))
    if not v.publish:
        verdict.add_failure_info(headline(v), "\n".join(r.text() for r in v.reasons), "hold")
    gate = [verdict]
    for diff in v.differences:
        case = TestCase(f"baseline {diff.fact} [{diff.target}]", classname="gate.baseline",
                        stdout="\n".join([difference_text(diff), *detail_lines(diff)]))
        if diff.hold:
            case.add_failure_info(difference_text(diff), failure_type="regression")
        gate.append(case)
    suites.append(TestSuite("gate", gate, properties={"verdict": "publish" if v.publish else "hold",
                                                       "policy": v.policy}))
    return to_xml_report_string(suites)

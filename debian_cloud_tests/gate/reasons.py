"""Reasons to hold an image, and the order in which every output presents them.

The kinds keep "the image is broken" apart from "the image could not be tested": both hold, but
they call for different people (the image's maintainers, the cloud account's owners).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """What a reason to hold is about (its value is what the JSON verdict says)."""

    FAILED = "failed"
    COULD_NOT_TEST = "could-not-test"
    INCOMPLETE = "incomplete"
    NO_TESTS = "no-tests"
    MISSING_TARGET = "missing-target"
    MISSING = "missing"
    SKIPPED = "skipped"
    FLAKY = "flaky"
    PROPERTY = "property"
    REGRESSION = "regression"


#: kind → heading, in the order the outputs show them.
KINDS = {
    Kind.FAILED: "Failed checks (image defects)",
    Kind.COULD_NOT_TEST: "Could not test (provider errors)",
    Kind.INCOMPLETE: "Incomplete or filtered runs",
    Kind.NO_TESTS: "No tests ran",
    Kind.MISSING_TARGET: "Required targets without results",
    Kind.MISSING: "Required checks missing",
    Kind.SKIPPED: "Required checks skipped",
    Kind.FLAKY: "Flaky checks over the policy",
    Kind.PROPERTY: "Property problems",
    Kind.REGRESSION: "Regressions beyond the bounds",
}


@dataclass(frozen=True)
class Reason:
    """One reason to hold: what kind, on which target and check, and why."""

    kind: Kind
    message: str
    target: str = ""
    check: str = ""
    detail: str = ""

    def text(self) -> str:
        where = " ".join(p for p in (self.check, f"[{self.target}]" if self.target else "") if p)
        body = f"{where}: {self.message}" if where else self.message
        return f"{body} ({self.detail})" if self.detail else body


def grouped(reasons: list[Reason]) -> list[tuple[str, list[Reason]]]:
    """The reasons by kind, in display order, skipping empty kinds."""
    return [(title, [r for r in reasons if r.kind == kind]) for kind, title in KINDS.items()
            if any(r.kind == kind for r in reasons)]

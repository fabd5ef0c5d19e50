"""Reasons to hold an image, and the order in which every output presents them.

The kinds keep "the image is broken" apart from "the image could not be tested": both hold, but
they call for different people (the image's maintainers, the cloud account's owners).
"""

from __future__ import annotations

from dataclasses import dataclass

#: kind → heading, in the order the outputs show them.
KINDS = {
    "failed": "Failed checks (image defects)",
    "could-not-test": "Could not test (provider errors)",
    "incomplete": "Incomplete or filtered runs",
    "no-tests": "No tests ran",
    "missing-target": "Required targets without results",
    "missing": "Required checks missing",
    "skipped": "Required checks skipped",
    "flaky": "Flaky checks over the policy",
    "property": "Property problems",
    "regression": "Regressions beyond the bounds",
}


@dataclass(frozen=True)
class Reason:
    """One reason to hold: what kind, on which target and check, and why."""

    kind: str
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

"""Checks on the suite properties: present, consistent, and about the image being gated.

Without them, results of another image (or of yesterday's build) could publish this one.
"""

from __future__ import annotations

from ..junitprops import Prop
from .junit import Run
from .policy import PropertiesPolicy
from .reasons import Kind, Reason


def _agreement(runs: list[Run], name: str, within: tuple[str, ...]) -> list[Reason]:
    """Values present must be equal; a run that lacks the property is `required`'s to hold, since a
    run that never booted legitimately lacks what only a booted machine reports."""
    groups: dict[tuple[str, ...], list[Run]] = {}
    for run in runs:
        groups.setdefault(tuple(run.prop(k) for k in within), []).append(run)
    reasons = []
    for key, members in groups.items():
        values: dict[str, list[str]] = {}
        for run in members:
            if run.prop(name):
                values.setdefault(run.prop(name), []).append(run.source)
        if len(values) > 1:
            shown = "; ".join(f"{value[:16]} in {', '.join(dict.fromkeys(srcs))}"
                              for value, srcs in values.items())
            scope = "/".join(k for k in key if k) or "all files"
            reasons.append(Reason(Kind.PROPERTY, f"{name} differs between results of one image: "
                                  f"{shown}", scope))
    return reasons


def problems(runs: list[Run], policy: PropertiesPolicy, image_sha256: tuple[str, ...]) -> list[Reason]:
    """Missing required properties, disagreements, and results of an image other than --image-sha256."""
    reasons: list[Reason] = []
    for run in runs:
        missing = [p for p in policy.required if not run.prop(p)]
        if missing:
            reasons.append(Reason(Kind.PROPERTY, f"{run.source}: missing required propert"
                                  f"{'ies' if len(missing) > 1 else 'y'} {', '.join(missing)}"))
    for name in policy.must_agree:
        reasons.extend(_agreement(runs, name, policy.agree_within))
    wanted = {h.lower() for h in image_sha256}
    if wanted:
        seen = set()
        for run in runs:
            sha = run.prop(Prop.IMAGE_SHA256).lower()
            seen.add(sha)
            if not sha:
                reasons.append(Reason(Kind.PROPERTY, f"{run.source}: no image_sha256 property, so it cannot "
                                      "be shown to test the --image-sha256 image"))
            elif sha not in wanted:
                reasons.append(Reason(Kind.PROPERTY, f"{run.source}: tested image {sha[:16]}…, "
                                      "not the one given by --image-sha256"))
        for sha in sorted(wanted - seen):
            reasons.append(Reason(Kind.PROPERTY, f"no results for the --image-sha256 image {sha[:16]}…"))
    return reasons

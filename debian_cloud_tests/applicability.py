"""Where a check applies: `@pytest.mark.applies(provider=…, arch=…, firmware=…, image_type=…)`, decided before
anything boots.  "Not applicable" is a skip with a reason, never a pass."""

from __future__ import annotations

import pytest

from .spec import Arch, Firmware, ImageType, LaunchSpec

AXES = {"provider", "arch", "firmware", "image_type"}


def _as_set(value: object) -> set[str]:
    if isinstance(value, str):
        return {value}
    return {str(getattr(v, "value", v)) for v in value}  # type: ignore[attr-defined]


def validate(marker: pytest.Mark, where: str) -> None:
    """A typo in a marker fails collection instead of silently applying everywhere."""
    unknown = set(marker.kwargs) - AXES
    if unknown or marker.args:
        raise pytest.UsageError(f"{where}: applies() takes only {sorted(AXES)}, got {sorted(unknown)}")
    known = {"arch": {a.value for a in Arch}, "firmware": {f.value for f in Firmware},
             "image_type": {t.value for t in ImageType}}
    for axis, allowed in known.items():
        bad = _as_set(marker.kwargs.get(axis, ())) - allowed
        if bad:
            raise pytest.UsageError(f"{where}: applies({axis}=…) has unknown {sorted(bad)}")


def not_applicable(item: pytest.Item, provider: str, spec: LaunchSpec) -> str | None:
    """The reason *item* does not apply to this run, or None."""
    current = {"provider": provider, "arch": spec.arch.value,
               "firmware": spec.firmware.value if spec.firmware else "",
               "image_type": spec.image_type.value if spec.image_type else "unknown"}
    for marker in item.iter_markers("applies"):
        validate(marker, item.nodeid)
        for axis, wanted in marker.kwargs.items():
            if current[axis] not in _as_set(wanted):
                return f"{axis} {current[axis]} not in {sorted(_as_set(wanted))}"
    return None

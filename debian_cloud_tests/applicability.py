"""Where a check applies: `@pytest.mark.applies(provider=…, arch=…, firmware=…, image_type=…,
release=…, secure_boot=…)`.  Provider, arch, firmware, image type and Secure Boot are decided
before anything boots; a release the image's name does not tell (and --release does not give) is
read from the guest's os-release before the check runs.  "Not applicable" is a skip with a
reason, never a pass.

A value is one name, a list of names, `Not(…)` for "anywhere but", or for releases "trixie+"
for "trixie and every later release"; secure_boot is "yes" where the run asked for Secure Boot
(--secure-boot), else "no"."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from .spec import RELEASES, Arch, Firmware, ImageType, LaunchSpec

AXES = ("provider", "arch", "firmware", "image_type", "release", "secure_boot")
#: axes whose value may only be known once the guest is up
LATE_AXES = {"release"}


@dataclass(frozen=True)
class Not:
    """Every value but these: `applies(provider=Not("ssh"))`."""

    values: tuple[str, ...]

    def __init__(self, *values: str) -> None:
        object.__setattr__(self, "values", tuple(values))

    def __str__(self) -> str:
        return "not " + ",".join(self.values)


def _names(value: object) -> set[str]:
    if isinstance(value, Not):
        return set(value.values)
    if isinstance(value, str):
        return {value}
    return {str(getattr(v, "value", v)) for v in value}  # type: ignore[attr-defined]


def _release_names(value: object) -> set[str]:
    """Release names with "X+" spelled out into X and every later release."""
    names = set()
    for name in _names(value):
        if name.endswith("+") and name[:-1] in RELEASES:
            names |= set(RELEASES[RELEASES.index(name[:-1]):])
        else:
            names.add(name)
    return names


def matches(axis: str, wanted: object, current: str) -> bool:
    """Whether *current* is one of the values *wanted* on *axis*."""
    names = _release_names(wanted) if axis == "release" else _names(wanted)
    return (current not in names) if isinstance(wanted, Not) else (current in names)


def describe(axis: str, wanted: object) -> str:
    """The marker's value as the catalogue prints it."""
    if isinstance(wanted, Not):
        return f"{axis}≠{'/'.join(wanted.values)}"
    return f"{axis}={'/'.join(sorted(_names(wanted)))}"


def validate(marker: pytest.Mark, where: str) -> None:
    """A typo in a marker fails collection instead of silently applying everywhere."""
    unknown = set(marker.kwargs) - set(AXES)
    if unknown or marker.args:
        raise pytest.UsageError(f"{where}: applies() takes only {list(AXES)}, got {sorted(unknown)}")
    known = {"arch": {a.value for a in Arch}, "firmware": {f.value for f in Firmware},
             "image_type": {t.value for t in ImageType},
             "release": set(RELEASES) | {f"{r}+" for r in RELEASES},
             "secure_boot": {"yes", "no"}}
    for axis, allowed in known.items():
        bad = _names(marker.kwargs.get(axis, ())) - allowed
        if bad:
            raise pytest.UsageError(f"{where}: applies({axis}=…) has unknown {sorted(bad)}")


def current_values(provider: str, spec: LaunchSpec) -> dict[str, str | None]:
    """This run's value on each axis; None where it is not known yet."""
    return {"provider": provider, "arch": spec.arch.value,
            "firmware": spec.firmware.value if spec.firmware else "unknown",
            "image_type": spec.image_type.value if spec.image_type else "unknown",
            "release": spec.release, "secure_boot": "yes" if spec.secure_boot else "no"}


def not_applicable(item: pytest.Item, provider: str, spec: LaunchSpec) -> str | None:
    """The reason *item* does not apply to this run, or None (also while an axis it depends on
    is not known yet: `pending_axes` names those)."""
    current = current_values(provider, spec)
    for marker in item.iter_markers("applies"):
        validate(marker, item.nodeid)
        for axis, wanted in marker.kwargs.items():
            value = current[axis]
            if value is not None and not matches(axis, wanted, value):
                return f"{axis} {value} {'in' if isinstance(wanted, Not) else 'not in'} " \
                       f"{sorted(_names(wanted))}"
    return None


def pending_axes(item: pytest.Item, provider: str, spec: LaunchSpec) -> set[str]:
    """The axes *item* depends on whose value this run learns only from the guest."""
    current = current_values(provider, spec)
    return {axis for m in item.iter_markers("applies") for axis in m.kwargs
            if axis in LATE_AXES and current[axis] is None}


class _StartsTheMachine(Not):
    """Every provider that starts the machine itself, so sees its console and its boot: all but
    those that reach a host somebody else started (`Provider.starts_machines` false), looked up
    when first asked, among the providers installed."""

    def __init__(self) -> None:
        pass

    @property  # type: ignore[override]
    def values(self) -> tuple[str, ...]:
        from .provider import provider_classes

        return tuple(sorted(n for n, cls in provider_classes().items() if not cls.starts_machines))


STARTS_THE_MACHINE = _StartsTheMachine()

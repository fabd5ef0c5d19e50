"""Check-id patterns, and the scope (provider, arch, …) a policy rule applies to.

Results of several providers and architectures are judged together, so each rule says where it
holds; a run is grouped into a Target by the properties that scopes can name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..junitprops import Prop
from ..spec import RELEASE_NUMBERS
from .junit import Run

GLOB, REGEX = "glob", "regex"
#: Policy scope key → the target attribute it is matched against.
SCOPE_KEYS = {"providers": "provider", "arches": "arch", "firmwares": "firmware",
              "image_types": "image_type", "releases": "releases"}
_CODENAME = re.compile(r"\(([a-z]+)\)")


def glob_regex(text: str) -> str:
    """`*` and `?` are wildcards; everything else, `[` included, is literal (ids hold `[param]`)."""
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)


@dataclass(frozen=True)
class Pattern:
    """A check-id pattern: a glob by default, a Python regular expression on request."""

    text: str
    kind: str = GLOB
    regex: re.Pattern[str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        source = glob_regex(self.text) if self.kind == GLOB else self.text
        object.__setattr__(self, "regex", re.compile(source))  # re.error is the caller's to report

    def matches(self, check_id: str) -> bool:
        return self.regex.fullmatch(check_id) is not None

    @property
    def literal(self) -> bool:
        """A plain check id: when it did not run, that exact check is missing."""
        return self.kind == GLOB and "*" not in self.text and "?" not in self.text


@dataclass(frozen=True)
class Target:
    """What was tested: one image on one provider, arch, firmware; reruns share a target."""

    provider: str = ""
    arch: str = ""
    firmware: str = ""
    image_type: str = ""
    releases: frozenset[str] = frozenset()

    @property
    def label(self) -> str:
        parts = [p for p in (self.provider, self.arch, self.firmware, self.image_type) if p]
        return "/".join(parts) or "unknown"

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.provider, self.arch, self.firmware, self.image_type)


def run_releases(run: Run) -> set[str]:
    """The release being tested, by codename and by number: the run's `release` (what the run was
    told it tests, --release or the image's name) when it recorded one, else what the guest
    reported.  An image that boots as another release must not borrow that release's excuses."""
    tested = run.prop(Prop.RELEASE)
    if tested:
        numbers = {code: number for number, code in RELEASE_NUMBERS.items()}
        return {tested, numbers.get(tested, RELEASE_NUMBERS.get(tested, ""))} - {""}
    found = {run.prop(Prop.OS_VERSION_ID), run.prop(Prop.OS_CODENAME), run.prop(Prop.VERSION_CODENAME)}
    codename = _CODENAME.search(run.prop(Prop.OS_RELEASE))
    if codename:
        found.add(codename.group(1))
    return {r for r in found if r}


def run_target(run: Run) -> Target:
    return Target(run.prop(Prop.PROVIDER), run.prop(Prop.ARCH), run.prop(Prop.FIRMWARE),
                  run.prop(Prop.IMAGE_TYPE), frozenset(run_releases(run)))


@dataclass(frozen=True)
class Scope:
    """Where a rule applies; an empty list means everywhere."""

    providers: tuple[str, ...] = ()
    arches: tuple[str, ...] = ()
    firmwares: tuple[str, ...] = ()
    image_types: tuple[str, ...] = ()
    releases: tuple[str, ...] = ()

    def matches(self, target: Target, *, unknown: bool) -> bool:
        """Whether the rule applies to the target; `unknown` answers for facts the run lacks.

        Unknown facts must never loosen the gate: a requirement applies (unknown=True), an
        excuse does not (unknown=False).
        """
        for key, attr in SCOPE_KEYS.items():
            wanted = getattr(self, key)
            if not wanted:
                continue
            value = getattr(target, attr)
            have = set(value) if isinstance(value, frozenset) else {value} - {""}
            if not have:
                if not unknown:
                    return False
            elif not have & set(wanted):
                return False
        return True

    def describe(self) -> str:
        parts = [f"{key}={','.join(getattr(self, key))}" for key in SCOPE_KEYS if getattr(self, key)]
        return " ".join(parts) or "everywhere"

"""What a locator answers: Debian's images on a cloud, by release and arch."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import UsageError

#: Debian's releases a cloud offers images of: version -> codename
RELEASES = {"12": "bookworm", "13": "trixie"}
ARCHES = ("amd64", "arm64")
#: debian-13, debian-trixie, debian-13-arm64: the newest image of that release (and arch)
ALIASES = re.compile(r"^debian-(?P<release>\d+|[a-z]+)(?:-(?P<arch>amd64|arm64))?$")


@dataclass(frozen=True)
class Query:
    version: str | None = None  # "12", "13"; None: every release
    arch: str | None = None  # "amd64", "arm64"; None: every arch

    @property
    def codename(self) -> str | None:
        return RELEASES.get(self.version or "")


@dataclass(frozen=True)
class Offered:
    """One image as the cloud names it; *id* is what `--image` takes on that cloud."""

    id: str
    name: str
    version: str
    arch: str
    created: str  # ISO 8601, as the cloud says; sorts as time
    region: str = ""
    #: the cloud's own pointers to it ("latest" SSM parameter, image family…)
    pointers: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "version": self.version,
                "codename": RELEASES.get(self.version, ""), "arch": self.arch,
                "created": self.created, "region": self.region, "pointers": list(self.pointers),
                **({"extra": self.extra} if self.extra else {})}


@dataclass(frozen=True)
class Alias:
    text: str
    version: str
    arch: str | None  # None: the run's --arch, else amd64


def parse_release(text: str) -> str:
    """12, 13, bookworm or trixie as a version; anything else a UsageError naming the choices."""
    value = text.strip().lower()
    if value in RELEASES:
        return value
    for version, codename in RELEASES.items():
        if value == codename:
            return version
    raise UsageError(f"--release {text!r}: give one of "
                     f"{', '.join(f'{v} ({c})' for v, c in RELEASES.items())}")


def parse_alias(image: str) -> Alias | None:
    """An alias in *image* (None: it is not one, so it is the cloud's own id)."""
    found = ALIASES.match(image)
    if not found:
        return None
    try:
        version = parse_release(found["release"])
    except UsageError:
        return None
    return Alias(image, version, found["arch"])


def newest_first(images: list[Offered]) -> list[Offered]:
    return sorted(images, key=lambda i: (i.created, i.name), reverse=True)

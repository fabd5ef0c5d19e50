"""What to build: release, vendor, arch, firmware and size, checked and turned into FAI classes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import UsageError

RELEASES = {"bookworm": "12", "trixie": "13"}
VENDORS = ("generic", "genericcloud", "nocloud", "ec2", "gce", "azure", "vagrant")
#: the vendors whose image is a disk a cloud boots (vagrant's is a box for the vagrant provider)
CLOUD_VENDORS = VENDORS[:-1]
ARCHES = ("amd64", "arm64")
FIRMWARES = ("bios", "uefi")
FORMATS = ("raw", "qcow2")
#: Classes a boot firmware brings: the partition table and the boot loader.
BOOT_CLASSES = {"bios": ("BIOS", "GRUB_PC"), "uefi": ("UEFI", "GRUB_EFI")}
_SIZE = re.compile(r"^([1-9][0-9]*)([MGT])$")
_UNIT = {"M": 1024**2, "G": 1024**3, "T": 1024**4}
_CLASS = re.compile(r"^[A-Z0-9_]+$")
MIN_SIZE = 1024**3


def _one_of(what: str, value: str, allowed: tuple[str, ...] | dict[str, str]) -> str:
    if value not in allowed:
        raise UsageError(f"unknown {what} {value!r}; choose one of {', '.join(allowed)}")
    return value


@dataclass(frozen=True)
class BuildSpec:
    """One image to build; constructing it validates every field."""

    release: str
    vendor: str
    arch: str
    firmware: str = ""
    size: str = "2G"
    fmt: str = "qcow2"
    extra_classes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        _one_of("release", self.release, RELEASES)
        _one_of("vendor", self.vendor, VENDORS)
        _one_of("arch", self.arch, ARCHES)
        _one_of("format", self.fmt, FORMATS)
        if not self.firmware:
            # arm64 has no BIOS; amd64 defaults to BIOS, the layout this host can build natively.
            object.__setattr__(self, "firmware", "uefi" if self.arch == "arm64" else "bios")
        _one_of("firmware", self.firmware, FIRMWARES)
        if self.arch == "arm64" and self.firmware == "bios":
            raise UsageError("arm64 has no BIOS: use --firmware uefi")
        if self.vendor == "vagrant" and self.fmt != "qcow2":
            raise UsageError("a vagrant box holds a qcow2 image: drop --format raw")
        if self.size_bytes < MIN_SIZE:
            raise UsageError(f"--size {self.size} is too small: the root file system needs at least 1G")
        bad = [c for c in self.extra_classes if not _CLASS.match(c)]
        if bad:
            raise UsageError(f"bad class name(s) {', '.join(bad)}: FAI classes are A-Z, 0-9 and _")

    @property
    def size_bytes(self) -> int:
        m = _SIZE.match(self.size)
        if not m:
            raise UsageError(f"bad --size {self.size!r}; write a number and M, G or T, e.g. 2G")
        return int(m.group(1)) * _UNIT[m.group(2)]

    @property
    def suffix(self) -> str:
        """The built file's: the disk format, or ``box`` for a Vagrant box."""
        return "box" if self.vendor == "vagrant" else self.fmt

    @property
    def name(self) -> str:
        """Named like Debian's official images, e.g. debian-12-genericcloud-amd64."""
        extra = "".join(f"-{c.lower().replace('_', '-')}" for c in self.extra_classes)
        return f"debian-{RELEASES[self.release]}-{self.vendor}-{self.arch}{extra}"

    def classes(self) -> list[str]:
        """The FAI class list, most general first; CLEANUP last so that it sees everything."""
        return ["DEBIAN", "CLOUD", self.release.upper(), self.vendor.upper(), self.arch.upper(),
                *BOOT_CLASSES[self.firmware], *self.extra_classes, "CLEANUP"]

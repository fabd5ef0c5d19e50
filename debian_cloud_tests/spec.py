"""The axes of a test run (arch, firmware, accel) and the launch spec a provider receives."""

from __future__ import annotations

import enum
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from .instancetypes import Table
from .upgrade.source import UpgradeSource


class Arch(enum.StrEnum):
    """Debian architecture names, as the image and the policy spell them."""

    AMD64 = "amd64"
    ARM64 = "arm64"

    @classmethod
    def host(cls) -> Arch:
        machine = os.uname().machine
        return cls.ARM64 if machine in ("aarch64", "arm64") else cls.AMD64

    @classmethod
    def from_image_name(cls, name: str) -> Arch | None:
        """Debian's image names carry the arch (debian-12-genericcloud-arm64.qcow2)."""
        lowered = name.lower()
        if "arm64" in lowered or "aarch64" in lowered:
            return cls.ARM64
        if "amd64" in lowered or "x86_64" in lowered:
            return cls.AMD64
        return None


class ImageType(enum.StrEnum):
    """Debian's cloud image types: what the image promises decides some checks (its kernel)."""

    GENERIC = "generic"
    GENERICCLOUD = "genericcloud"
    NOCLOUD = "nocloud"
    EC2 = "ec2"
    GCE = "gce"
    AZURE = "azure"

    @classmethod
    def from_image_name(cls, name: str) -> ImageType | None:
        """Debian's image names carry the type (debian-12-genericcloud-amd64.qcow2)."""
        words = set(re.split(r"[-_.]", name.lower()))
        return next((t for t in cls if t.value in words), None)


#: Debian releases in order, oldest first; sid (unstable) is always the newest
RELEASES = ("bullseye", "bookworm", "trixie", "forky", "duke", "sid")
RELEASE_NUMBERS = {"11": "bullseye", "12": "bookworm", "13": "trixie", "14": "forky", "15": "duke"}


def release_from_image_name(name: str) -> str | None:
    """Debian's image names carry the release (debian-13-genericcloud-amd64, or a codename)."""
    lowered = name.lower()
    number = re.search(r"debian-(\d+)(?!\d)", lowered)
    if number and number.group(1) in RELEASE_NUMBERS:
        return RELEASE_NUMBERS[number.group(1)]
    words = set(re.split(r"[-_.]", lowered))
    return next((r for r in RELEASES if r in words), None)


def release_from_os_release(fields: dict[str, str]) -> str | None:
    """The guest's release from its os-release (VERSION_CODENAME; sid and testing have no
    VERSION_ID and name the next release, which is what a check about it means)."""
    codename = fields.get("VERSION_CODENAME", "")
    if codename in RELEASES:
        return codename
    return RELEASE_NUMBERS.get(fields.get("VERSION_ID", ""))


class Firmware(enum.StrEnum):
    BIOS = "bios"
    UEFI = "uefi"


class Accel(enum.StrEnum):
    AUTO = "auto"
    KVM = "kvm"
    TCG = "tcg"


class KeepInstance(enum.StrEnum):
    NEVER = "never"
    ON_FAILURE = "on-failure"
    ALWAYS = "always"


class HostKeySource(enum.StrEnum):
    """How the SSH host key is learnt: from the guest's console, or by giving the guest one."""

    CONSOLE = "console"
    INJECTED = "injected"


@dataclass(frozen=True)
class ProviderSettings:
    """What a provider's ``validate`` worked out from the spec and its options: each provider's
    ``launch`` reads its own subclass, typed, instead of parsing ``LaunchSpec.options`` again."""


@dataclass(frozen=True)
class LaunchHooks:
    """Wiring that code embedding a provider gives it beyond the user's options (an emulated
    cloud's guest, the image builder's VM); a provider that takes any names its own subclass."""


S = TypeVar("S", bound=ProviderSettings)


@dataclass(frozen=True)
class Shape:
    """The vCPUs and memory an instance type gives, where the platform says (None: not said)."""

    vcpus: int | None = None
    memory_mib: int | None = None

    def facts(self) -> dict[str, str]:
        """As PlatformFacts.extra holds them (what the metadata suite compares the guest to)."""
        given = {"vcpus": self.vcpus, "memory_mib": self.memory_mib}
        return {k: str(v) for k, v in given.items() if v is not None}


@dataclass
class LaunchSpec:
    """Everything a provider needs to start one machine; providers reject what they cannot honour."""

    image: str
    arch: Arch
    firmware: Firmware | None = None
    instance_type: str | None = None
    ssh_user: str = "debian"
    user_data: Path | None = None
    boot_timeout: float = 600.0
    accel: Accel = Accel.AUTO
    disk_size: str | None = None
    host_key_source: HostKeySource = HostKeySource.CONSOLE
    ca_certs: list[Path] = field(default_factory=list)
    run_id: str = ""
    options: dict[str, str] = field(default_factory=dict)
    #: the keys of *options* given on the command line (not by an ini file or a default)
    command_line: frozenset[str] = frozenset()
    image_type: ImageType | None = None
    #: the Debian release the image holds (a codename); None: read from the guest once it is up
    release: str | None = None
    #: the machine may outlive this process (--keep-instance): nothing may tie it to the process
    may_outlive_run: bool = False
    #: boot with UEFI Secure Boot enforced (--secure-boot); a provider that cannot refuses it
    secure_boot: bool = False
    #: a check will join this machine to another of the run on a network of their own
    #: (Machine.link_to): a provider that needs to prepare for that at launch does
    peer_network: bool = False
    #: what instance types promise (GPUs, a throughput floor): shipped, plus --instance-types
    instance_types: Table = field(default_factory=Table)
    #: where the upgrade suite upgrades from (--upgrade); None: the suite does not apply
    upgrade: UpgradeSource | None = None
    #: see LaunchHooks; a provider that takes hooks refuses any not of its own type
    hooks: LaunchHooks | None = None
    #: set by the provider's validate, read by its launch
    settings: ProviderSettings | None = None

    def settings_as(self, kind: type[S]) -> S:
        """This spec's settings as the provider's own type (a spec not validated by that
        provider is a programming error, not a user's)."""
        if not isinstance(self.settings, kind):
            raise TypeError(f"launch of a spec not validated by its provider: {kind.__name__} "
                            f"expected, {type(self.settings).__name__} found")
        return self.settings

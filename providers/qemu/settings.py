"""What the QEMU provider's validate works out, and the hooks that code embedding it may give."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

from debian_cloud_tests.datasources.platforms import Datasource
from debian_cloud_tests.spec import LaunchHooks, ProviderSettings

from .image import ImageInfo


class Network(enum.StrEnum):
    """--qemu-network: what the guest's user-mode network reaches."""

    USER = "user"  # the internet through this host, walled off its loopback and link-local
    OPEN = "open"  # this host's loopback too (a local apt proxy, an emulated cloud's relay)
    ISOLATED = "isolated"  # nothing but the forwarded SSH port


@dataclass(frozen=True)
class QemuHooks(LaunchHooks):
    """How an emulated cloud or the image builder wires a guest; none of it is a user's option."""

    #: False: no NoCloud seed; the guest is configured elsewhere (an emulated metadata service)
    seed: bool = True
    #: forward SSH from this address and port only (an emulated cloud's public address)
    ssh_listen: tuple[str, int] | None = None
    mac: str | None = None
    #: -smbios values (e.g. a system and a chassis entry): the identity ds-identify reads
    smbios: tuple[str, ...] = ()
    #: more user-mode network options (the network's prefix, a guestfwd to a metadata relay)
    user_net: str = ""
    #: a raw disk after the others (not first: BIOS boots the first disk), e.g. where a build VM
    #: writes the image it built
    extra_disk: Path | None = None
    #: an ISO on a SCSI CD-ROM (/dev/sr0), as a cloud attaches provisioning media
    cdrom: Path | None = None
    #: bytes per second a peer link (Machine.link_to) lets through each way, as a platform's NIC
    #: shaper would (None: as fast as the two QEMUs go)
    peer_rate: float | None = None


@dataclass(frozen=True)
class QemuSettings(ProviderSettings):
    image: ImageInfo
    vcpus: int
    memory_mib: int
    disk_size: int  # bytes
    port_range: tuple[int, int] | None
    network: Network
    hooks: QemuHooks = field(default_factory=QemuHooks)
    #: the cloud the guest is shown (NoCloud: a seed, no cloud)
    datasource: Datasource = Datasource.NOCLOUD
    #: the instance type's name as that cloud spells it (VCPUSxMIB under NoCloud)
    instance_type_name: str = ""
    #: the -device of each GPU the instance-type table promises for this instance type
    gpu_devices: tuple[str, ...] = ()

    @property
    def sealed(self) -> bool:
        """isolated, for a guest that must resolve its cloud's names (GCE's metadata server): a
        wall with no way out instead of restrict=on, which answers no DNS (:mod:`.netwall`)."""
        return self.network is Network.ISOLATED and self.datasource is Datasource.GCE

    @property
    def user_net(self) -> str:
        """The hooks' user-network options; isolated adds restrict=on (no router, no DNS)
        unless sealed."""
        restrict = (self.network is Network.ISOLATED and not self.sealed
                    and "restrict=on" not in self.hooks.user_net)
        return ",".join(filter(None, (self.hooks.user_net, "restrict=on" if restrict else "")))

    @property
    def walled(self) -> bool:
        """user: the internet but not this host (:mod:`.netwall`); sealed: the same wall with no
        way out; open and isolated, or a restricted network given by hooks, need no wall."""
        return (self.network is Network.USER or self.sealed) and "restrict=on" not in self.user_net

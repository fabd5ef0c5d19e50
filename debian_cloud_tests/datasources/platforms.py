"""What each emulated cloud offers: its cloud-init datasource, the arch and firmware its machines
boot, and its instance types (the shapes a guest of that name gets)."""

from __future__ import annotations

import enum
import re

from debian_cloud_tests.errors import (
    DatasourceContradictionError,
    DatasourcePlatformError,
    UnknownDatasourceError,
    UsageError,
)
from debian_cloud_tests.spec import Arch, Firmware, ImageType


class Datasource(enum.StrEnum):
    EC2 = "ec2"
    GCE = "gce"
    AZURE = "azure"
    OPENSTACK = "openstack"
    CONFIGDRIVE = "configdrive"
    NOCLOUD = "nocloud"

    @property
    def cloud_init_name(self) -> str:
        """The name cloud-init gives the datasource (``DataSource<name>`` in its status)."""
        return _CLOUD_INIT_NAMES[self]


_CLOUD_INIT_NAMES = {Datasource.EC2: "Ec2", Datasource.GCE: "GCE", Datasource.AZURE: "Azure",
                     Datasource.OPENSTACK: "OpenStack", Datasource.CONFIGDRIVE: "ConfigDrive",
                     Datasource.NOCLOUD: "NoCloud"}

#: the image types built for one cloud; generic, genericcloud and nocloud images run anywhere
VENDOR_TYPES = {ImageType.EC2: Datasource.EC2, ImageType.GCE: Datasource.GCE,
                ImageType.AZURE: Datasource.AZURE}

_BOTH = (Firmware.BIOS, Firmware.UEFI)
#: the firmware each cloud's machines boot, per arch: arm64 instances are UEFI on every cloud
FIRMWARES: dict[Datasource, dict[Arch, tuple[Firmware, ...]]] = {
    Datasource.EC2: {Arch.AMD64: _BOTH, Arch.ARM64: (Firmware.UEFI,)},
    Datasource.GCE: {Arch.AMD64: _BOTH, Arch.ARM64: (Firmware.UEFI,)},
    Datasource.AZURE: {Arch.AMD64: _BOTH, Arch.ARM64: (Firmware.UEFI,)},  # Gen1 BIOS, Gen2 UEFI
}

#: instance types by arch: name -> (vCPUs, MiB); the first of an arch is the default
INSTANCE_TYPES: dict[Datasource, dict[Arch, dict[str, tuple[int, int]]]] = {
    Datasource.EC2: {
        Arch.AMD64: {"t3.micro": (2, 1024), "t2.micro": (1, 1024), "t3.small": (2, 2048),
                     "t2.small": (1, 2048), "t3.medium": (2, 4096), "m5.large": (2, 8192)},
        Arch.ARM64: {"t4g.micro": (2, 1024), "t4g.small": (2, 2048), "t4g.medium": (2, 4096),
                     "m6g.medium": (1, 4096)}},
    Datasource.GCE: {
        Arch.AMD64: {"e2-micro": (2, 1024), "e2-small": (2, 2048), "e2-medium": (2, 4096),
                     "n1-standard-1": (1, 3840), "g1-small": (1, 1740)},
        Arch.ARM64: {"t2a-standard-1": (1, 4096), "t2a-standard-2": (2, 8192)}},
    Datasource.AZURE: {
        Arch.AMD64: {"Standard_B2ats_v2": (2, 1024), "Standard_B1s": (1, 1024),
                     "Standard_B1ms": (1, 2048), "Standard_B2s": (2, 4096)},
        Arch.ARM64: {"Standard_B2pts_v2": (2, 1024), "Standard_B2pls_v2": (2, 4096)}},
    Datasource.OPENSTACK: {
        arch: {"m1.small": (1, 2048), "m1.medium": (2, 4096)} for arch in Arch},
}
INSTANCE_TYPES[Datasource.CONFIGDRIVE] = INSTANCE_TYPES[Datasource.OPENSTACK]


def parse(value: str) -> Datasource:
    try:
        return Datasource(value.lower())
    except ValueError:
        raise UnknownDatasourceError(f"--datasource {value!r}: give one of "
                                     f"{', '.join(d.value for d in Datasource)}") from None


def resolve(given: str | None, on_command_line: bool, image_type: ImageType | None) -> Datasource:
    """The datasource to emulate: *given*, else the image type's cloud, else NoCloud.

    An image built for one cloud runs against another's datasource only when the command line
    says so (a deliberate cross-check); from an ini file that is a mistake, refused.
    """
    vendor = VENDOR_TYPES.get(image_type) if image_type else None
    if not given:
        return vendor or Datasource.NOCLOUD
    chosen = parse(given)
    if vendor and chosen not in (vendor, Datasource.NOCLOUD) and not on_command_line:
        raise DatasourceContradictionError(
            f"the image is a {image_type} image but the ini file's datasource is {chosen}: give "
            f"--datasource={chosen} on the command line to run it against another cloud, or "
            "correct --image-type")
    return chosen


def check_platform(datasource: Datasource, arch: Arch, firmware: Firmware) -> None:
    """Refuse an arch and firmware the cloud's machines do not boot."""
    offered = FIRMWARES.get(datasource, {}).get(arch)
    if offered is not None and firmware not in offered:
        raise DatasourcePlatformError(
            f"--datasource={datasource}: {datasource} boots {arch} machines with "
            f"{' or '.join(f.value for f in offered)} only, not {firmware}")


def instance_type(datasource: Datasource, arch: Arch, given: str | None,
                  default_shape: tuple[int, int]) -> tuple[str, int, int]:
    """(the cloud's name, vCPUs, MiB) of --instance-type, given as one of the cloud's names or as
    VCPUSxMIB (the name of the cloud's type of that shape); absent: the cloud's type of
    *default_shape*, else its first."""
    table = INSTANCE_TYPES.get(datasource, {}).get(arch, {})
    if given and given in table:
        return (given, *table[given])
    shape = default_shape
    if given:
        m = re.fullmatch(r"(\d+)x(\d+)", given)
        if not m:
            raise UsageError(f"--instance-type {given!r}: with --datasource={datasource} give one "
                             f"of {', '.join(table) or 'none'} or VCPUSxMEMORY_MIB")
        shape = (int(m.group(1)), int(m.group(2)))
    named = next((name for name, s in table.items() if s == shape), None)
    if named:
        return named, *shape
    if datasource in (Datasource.OPENSTACK, Datasource.CONFIGDRIVE, Datasource.NOCLOUD):
        return f"{shape[0]}x{shape[1]}", *shape  # a flavor is whatever the operator named
    if datasource is Datasource.GCE and arch is Arch.AMD64:
        return f"custom-{shape[0]}-{shape[1]}", *shape  # GCE's custom machine types
    if not given:
        first = next(iter(table))
        return first, *table[first]
    raise UsageError(f"--instance-type {given}: {datasource} has no {arch} instance type of "
                     f"{shape[0]} vCPUs and {shape[1]} MiB; give one of {', '.join(table)}")

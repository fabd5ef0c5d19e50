"""A GCE instance as a real QEMU guest: what the Compute Engine emulator boots for an instance of
a local image (see :mod:`.qemu_guests` for how it is reached).

SMBIOS says "Google Compute Engine" (manufacturer Google, serial ``GoogleCloud-…``), so
ds-identify and cloud-init pick the GCE datasource; the guest reaches its
:class:`GceMetadataServer` at ``metadata.google.internal``, which only resolves in the test's
namespace (see :mod:`.netns` and :mod:`.dns`), so its user network keeps its DNS.  The NIC has a
MAC of GCE's ``42:01`` form and the guest the machine type's vCPUs and memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from debian_cloud_tests.datasources import emulation
from debian_cloud_tests.datasources.emulation import gce_mac
from debian_cloud_tests.datasources.gce import GceInstanceData, GceMetadataServer
from debian_cloud_tests.spec import Arch, Firmware, LaunchSpec

from .qemu_guests import GUEST_OPTIONS, guest_hooks

#: the machine types the emulator knows: name -> (vCPUs, MiB)
MACHINE_TYPES = {"e2-small": (2, 2048), "e2-medium": (2, 4096), "t2a-standard-1": (1, 4096),
                 "g1-small": (1, 1740)}


def gce_guest(instance: dict[str, Any], local_image: Path, image: dict[str, Any], project: str,
              project_number: str, shown_machine_type: str = "") -> tuple[LaunchSpec, GceMetadataServer]:
    """The QEMU launch of *instance* (its REST body, as the fake keeps it) and its metadata
    server (started; stopped with the guest), which names *shown_machine_type* if given."""
    zone = instance["zone"].rsplit("/", 1)[-1]
    machine_type = instance["machineType"].rsplit("/", 1)[-1]
    vcpus, memory = MACHINE_TYPES[machine_type]
    nic = instance["networkInterfaces"][0]
    mac = gce_mac(nic["networkIP"])
    attributes = {i["key"]: i.get("value", "") for i in (instance.get("metadata") or {}).get("items", [])}
    data = GceInstanceData(
        instance_id=instance["id"], name=instance["name"], zone=zone, project=project,
        project_number=project_number, machine_type=shown_machine_type or machine_type,
        image=instance["disks"][0]["initializeParams"]["sourceImage"],
        network_ip=nic["networkIP"], external_ip=nic["accessConfigs"][0]["natIP"], mac=mac,
        attributes=attributes, tags=list((instance.get("tags") or {}).get("items", [])))
    metadata = GceMetadataServer(data).start()
    uefi = any(f.get("type") == "UEFI_COMPATIBLE" for f in image.get("guestOsFeatures", []))
    disk = instance["disks"][0].get("initializeParams", {}).get("diskSizeGb") or image["diskSizeGb"]
    spec = LaunchSpec(
        image=str(local_image), arch=Arch.AMD64, firmware=Firmware.UEFI if uefi else Firmware.BIOS,
        instance_type=f"{vcpus}x{memory}", disk_size=f"{disk}G", run_id=instance["name"],
        options=dict(GUEST_OPTIONS),
        hooks=guest_hooks(nic["accessConfigs"][0]["natIP"], mac, metadata.port,
                          emulation.gce_smbios(), restrict=False))
    return spec, metadata

"""A Nova server as a real QEMU guest: what the OpenStack emulator boots for a server of a local
image (see :mod:`.qemu_guests` for how it is reached and walled in).

SMBIOS says "OpenStack Nova", so cloud-init picks its OpenStack datasource; 169.254.169.254 is a
:class:`NovaMetadataServer` with the server's metadata, key, user-data and network; the NIC has a
MAC from Nova's ``fa:16:3e`` range and the guest the flavor's vCPUs, memory and disk.  On a
private network (in a namespace of the test's own) the guest's user network keeps its router, and
has no IPv6, as a project network without an IPv6 subnet.
"""

from __future__ import annotations

import base64
import random
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from debian_cloud_tests.datasources import emulation
from debian_cloud_tests.datasources.ec2 import InstanceData
from debian_cloud_tests.datasources.openstack import NovaMetadataServer, NovaServerData
from debian_cloud_tests.spec import Arch, Firmware, LaunchSpec

from .qemu_guests import GUEST_OPTIONS, guest_hooks


def nova_hostname(name: str) -> str:
    """The hostname Nova derives from a server's display name."""
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63]


def nova_guest(server: dict[str, Any], local_image: Path, image: dict[str, Any],
               public_keys: dict[str, str], network_id: str, address: str, ec2_index: int,
               project_id: str, region: str, fixed: str | None = None,
               private_net: bool = False) -> tuple[LaunchSpec, NovaMetadataServer]:
    """The QEMU launch of *server* and its metadata service (started; stopped with the guest):
    SSH on *address*, *fixed* its fixed address (*address* without one); *private_net* only in
    a namespace of the test's own."""
    flavor = server["flavor"]
    mac = "fa:16:3e:" + ":".join(f"{random.randint(0, 255):02x}" for _ in range(3))
    nova = NovaServerData(
        uuid=server["id"], name=server["name"], hostname=nova_hostname(server["name"]),
        availability_zone=server["OS-EXT-AZ:availability_zone"], project_id=project_id, mac=mac,
        network_id=network_id, meta=server["metadata"], public_keys=public_keys,
        user_data=base64.b64decode(server["user_data"]) if server.get("user_data") else None)
    ec2 = InstanceData(
        instance_id=f"i-{ec2_index:08x}", image_id=f"ami-{ec2_index:08x}",
        instance_type=flavor["original_name"], region=region, zone=nova.availability_zone,
        private_ip=fixed or address, private_dns=f"{nova.hostname}.novalocal", public_ip="", mac=mac,
        subnet_id="", vpc_id="", security_groups={g["name"]: g["name"] for g in server["security_groups"]},
        account_id=project_id, reservation_id=f"r-{server['id'][:8]}", architecture="x86_64",
        tokens_required=False, public_keys=public_keys)
    metadata = NovaMetadataServer(nova, ec2).start()
    uefi = str(image.get("hw_firmware_type", "")).lower() == "uefi"
    hooks = guest_hooks(address, mac, metadata.port, emulation.nova_smbios(server["id"]),
                        restrict=not private_net)
    if private_net:
        hooks = replace(hooks, user_net=f"{hooks.user_net},ipv6=off")
    spec = LaunchSpec(
        image=str(local_image), arch=Arch.AMD64, firmware=Firmware.UEFI if uefi else Firmware.BIOS,
        instance_type=f"{flavor['vcpus']}x{flavor['ram']}",
        disk_size=f"{flavor['disk']}G" if flavor["disk"] else None, run_id=server["id"],
        options=dict(GUEST_OPTIONS),
        hooks=hooks)
    return spec, metadata

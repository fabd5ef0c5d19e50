"""An Azure VM as a real QEMU guest: what the Resource Manager emulator boots for a VM of an image
that maps to a local file (see :mod:`.qemu_guests` for how it is reached).

The guest sees what an Azure VM sees: SMBIOS "Microsoft Corporation / Virtual Machine" with the
vmId as system UUID and Azure's chassis asset tag (how cloud-init recognises Azure), the
provisioning media on its CD-ROM (:mod:`.ovf`), and IMDS and the wireserver
(:mod:`.azure_metadata`) at their fixed addresses.  Both lie inside 168.0.0.0/7, which is therefore
the user network; it is restricted, so the guest reaches nothing else, unless the guest runs in a
network namespace of the test's own, where it may reach what the namespace holds: the other VMs'
private addresses, forwarded as their networks allow (see :mod:`.azure_net`).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from debian_cloud_tests.datasources import emulation
from debian_cloud_tests.datasources.azure import IMDS_HOST, WIRESERVER_HOST, AzureMetadataServer, AzureVmData
from debian_cloud_tests.datasources.ovf import OvfEnv, write_ovf_iso
from debian_cloud_tests.datasources.relay import command as relay_command
from debian_cloud_tests.spec import Arch, Firmware, LaunchSpec

from .qemu_guests import GUEST_OPTIONS, guest_hooks

#: slirp's network holding both fixed addresses, and the guest's DHCP address (its 15th)
NETWORK, PREFIX = emulation.AZURE_NET.split("/")
GUEST_IP = emulation.AZURE_GUEST
#: vCPUs x MiB for the sizes tests launch (others get the first)
SIZES = {"Standard_B2s": "2x2048", "Standard_B1s": "1x1024", "Standard_D2s_v5": "2x2048"}


def user_net(metadata_port: int, restrict: bool = True) -> str:
    """*restrict* False: only ever for a guest in a namespace of the test's own."""
    relay = relay_command(metadata_port)
    walled = "restrict=on," if restrict else ""
    return (f"net={NETWORK}/{PREFIX},{walled}guestfwd=tcp:{IMDS_HOST}:80-{relay},"
            f"guestfwd=tcp:{WIRESERVER_HOST}:80-{relay}")


def vm_data(vm: dict[str, Any], group: str, subscription: str, mac: str, address: str) -> AzureVmData:
    """IMDS's view of the VM resource *vm* (as the emulator stored it)."""
    props = vm["properties"]
    os_profile = props["osProfile"]
    keys = os_profile.get("linuxConfiguration", {}).get("ssh", {}).get("publicKeys", [])
    return AzureVmData(
        vm_id=props["vmId"], name=vm["name"], location=vm["location"],
        vm_size=props["hardwareProfile"]["vmSize"], resource_group=group, subscription=subscription,
        admin_username=os_profile["adminUsername"], computer_name=os_profile["computerName"],
        public_keys=[{"path": k.get("path", ""), "keyData": k.get("keyData", "")} for k in keys],
        image=props["storageProfile"]["imageReference"], mac=mac, private_ip=GUEST_IP,
        subnet=(NETWORK, PREFIX), public_ip=address, tags=vm.get("tags") or {})


def azure_guest(vm: dict[str, Any], local_image: Path, data: AzureVmData, address: str,
                firmware: Firmware, restrict: bool = True) -> tuple[LaunchSpec, AzureMetadataServer]:
    """The QEMU launch of *vm* and its endpoints (started; stopped, media and all, with the guest);
    *restrict* as :func:`user_net` takes it."""
    os_profile = vm["properties"]["osProfile"]
    media_dir = Path(tempfile.mkdtemp(prefix="dct-azure-ovf-"))
    try:
        iso = write_ovf_iso(media_dir / "ovf-env.iso", OvfEnv(
            hostname=data.computer_name, username=data.admin_username, public_keys=data.public_keys,
            custom_data=os_profile.get("customData", ""),
            disable_password=bool(os_profile.get("linuxConfiguration", {})
                                  .get("disablePasswordAuthentication", True))))
        server = AzureMetadataServer(data)
    except BaseException:
        shutil.rmtree(media_dir, ignore_errors=True)
        raise
    server.on_stop.append(lambda: shutil.rmtree(media_dir, ignore_errors=True))
    server.start()
    hooks = replace(guest_hooks(address, data.mac, server.port, emulation.azure_smbios(data.vm_id)),
                    user_net=user_net(server.port, restrict), cdrom=iso)
    spec = LaunchSpec(image=str(local_image), arch=Arch.AMD64, firmware=firmware,
                      instance_type=SIZES.get(data.vm_size, "2x2048"), run_id=data.vm_id,
                      options=dict(GUEST_OPTIONS), hooks=hooks)
    return spec, server

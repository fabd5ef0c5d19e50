"""The Resource Manager emulator's VMs that are real QEMU guests: which VM backs which guest, the
background boot whose end finishes the VM's creation, and stopping a guest with its VM.

Azure answers a VM create at once and completes the operation only when the guest has reported
ready to the wireserver (or fails it with ``OSProvisioningTimedOut``); the emulator does the same.
"""

from __future__ import annotations

import random
import threading
from typing import TYPE_CHECKING, Any

from debian_cloud_tests.spec import Firmware

from . import azure_net
from .azure_qemu import azure_guest, vm_data
from .qemu_guests import QemuGuests

if TYPE_CHECKING:
    from .azure_arm import FakeArm

#: how long Azure waits for a new VM to report ready
PROVISIONING_TIMEOUT = 20 * 60.0


def image_key(reference: dict[str, Any]) -> str:
    """``publisher:offer:sku`` of a marketplace reference (any version), or a managed image id."""
    if reference.get("id"):
        return str(reference["id"]).lower()
    return ":".join(str(reference.get(k, "")) for k in ("publisher", "offer", "sku")).lower()


class AzureBoots:
    """The guests behind VMs, by VM name (the key of boot diagnostics and restart requests)."""

    def __init__(self) -> None:
        self._ids: dict[str, str] = {}

    def vm_id(self, name: str) -> str | None:
        return self._ids.get(name.lower())

    def backs(self, guests: QemuGuests | None, vm: dict[str, Any]) -> bool:
        reference = vm.get("properties", {}).get("storageProfile", {}).get("imageReference", {})
        return guests is not None and image_key(reference) in guests.images

    def start(self, arm: FakeArm, guests: QemuGuests, path: str, op: dict[str, Any]) -> None:
        """Boot the VM stored at *path* in the background; *op* ends when it is provisioned."""
        vm = arm.resources[path]
        self._ids[vm["name"].lower()] = vm["properties"]["vmId"]
        threading.Thread(target=self._boot, args=(arm, guests, path, vm, op),
                         name=f"azure-boot-{vm['name']}", daemon=True).start()

    def _boot(self, arm: FakeArm, guests: QemuGuests, path: str, vm: dict[str, Any],
              op: dict[str, Any]) -> None:
        props = vm["properties"]
        try:
            parts = path.split("/")
            subscription, group = parts[2], parts[4]
            mac = "00:0d:3a:" + ":".join(f"{random.randint(0, 255):02x}" for _ in range(3))
            with arm.lock:
                address = _public_address(arm, vm, mac)
                where = azure_net.private_address(arm, vm)
            if arm.namespace is not None and where is not None:
                azure_net.add_address(arm, where[0])
            reference = props["storageProfile"]["imageReference"]
            firmware = Firmware.UEFI if "gen2" in str(reference.get("sku", "")).lower() else Firmware.BIOS
            spec, server = azure_guest(vm, guests.images[image_key(reference)],
                                       vm_data(vm, group, subscription, mac, address), address, firmware,
                                       restrict=arm.namespace is None)
            guest = guests.boot(props["vmId"], address, spec, server)
            waited = 0.0
            while not server.ready.wait(1.0):
                waited += 1.0
                if guest.stopped:
                    return
                if waited >= PROVISIONING_TIMEOUT:
                    raise TimeoutError("OSProvisioningTimedOut")
            with arm.lock:
                props["provisioningState"] = "Succeeded"
                op["status"] = "Succeeded"
                azure_net.forward(arm)
        except Exception as exc:  # the operation fails as Azure's does; the VM stays, Failed
            code = str(exc) if isinstance(exc, TimeoutError) else "OSProvisioningInternalError"
            with arm.lock:
                props["provisioningState"] = "Failed"
                op.update(status="Failed", error={"code": code, "message": f"{code}: {exc}"})

    def stop(self, guests: QemuGuests | None, resource: dict[str, Any]) -> None:
        """Stop the guest behind *resource*, if it is a VM that has one (a deleted VM stops)."""
        vm_id = resource.get("properties", {}).get("vmId")
        if guests is not None and vm_id and vm_id in self._ids.values():
            guests.stop(vm_id)


def _public_address(arm: FakeArm, vm: dict[str, Any], mac: str) -> str:
    """The address of the public IP on the VM's first NIC (which gets *mac*)."""
    (ref, *_) = vm["properties"]["networkProfile"]["networkInterfaces"]
    nic = arm.resources[ref["id"].lower()]
    nic["properties"]["macAddress"] = mac.replace(":", "-").upper()
    config = nic["properties"]["ipConfigurations"][0]["properties"]
    return str(arm.resources[config["publicIPAddress"]["id"].lower()]["properties"]["ipAddress"])

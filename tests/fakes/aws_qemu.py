"""moto's EC2 instances backed by real QEMU guests booted from a local test image.

When moto runs an instance of a registered AMI, a QEMU machine boots the image (through the QEMU
provider, with optional behaviour asked for in ``spec.options``):

* SSH is forwarded from ``127.x.y.z:22``, and that address is the instance's public IP in moto,
  so the AWS provider connects as it would on EC2 (public IP, port 22);
* the guest's user network is 169.254.169.0/24 with 169.254.169.254:80 forwarded to an
  :class:`ImdsServer` serving the instance's moto data and the run's user-data (IMDSv2);
* SMBIOS says "Amazon EC2" with an ``ec2…`` UUID and serial, so cloud-init picks its Ec2
  datasource; no NoCloud seed is attached, and the NIC has the MAC moto gave the ENI;
* the network is restricted: the guest reaches nothing but its metadata service.

get_console_output returns the QEMU console, reboot_instances resets the machine, and
terminate_instances stops QEMU and removes its run dir.
"""

from __future__ import annotations

import random
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from debian_cloud_tests.providers.qemu import QemuProvider
from debian_cloud_tests.providers.qemu.machine import QemuMachine

from debian_cloud_tests.rundir import RunDir
from debian_cloud_tests.spec import Arch, Firmware, LaunchSpec

from .imds import ImdsServer, InstanceData

RELAY = Path(__file__).with_name("relay.py")
SHAPES = {"t3.small": "2x2048", "t4g.small": "2x2048", "t3.micro": "2x1024"}


@dataclass
class Guest:
    instance_id: str
    address: str
    machine: QemuMachine
    run_dir: RunDir
    imds: ImdsServer
    stopped: bool = False


class QemuMachines:
    """Boots one QEMU guest per moto instance whose AMI maps to a local image."""

    def __init__(self) -> None:
        self.images: dict[str, Path] = {}
        self.guests: dict[str, Guest] = {}
        self.consoles: dict[str, str] = {}  # what terminated guests printed
        # QEMU is started with PR_SET_PDEATHSIG, which fires when the *thread* that forked it
        # ends: moto's request threads are short-lived, this one lives as long as the emulator.
        self._launcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qemu-launcher")
        self._prefix = f"127.{random.randint(100, 199)}.{random.randint(0, 255)}"
        self._count = 0
        # terminated while its guest was still being started (a run killed mid run_instances,
        # its guard quicker than QEMU): the guest is stopped as soon as it exists
        self._terminated_early: set[str] = set()
        self._lock = threading.Lock()

    def start(self, backend: Any, instance: Any) -> None:
        image = self.images.get(instance.image_id)
        if image is None:
            return
        self._count += 1
        address = f"{self._prefix}.{self._count}"
        instance.nics[0].public_ip = address
        imds = ImdsServer(_instance_data(backend, instance, address)).start()
        try:
            guest = self._launcher.submit(self._boot, backend, instance, image, address, imds).result()
        except BaseException:
            imds.stop()
            raise
        with self._lock:
            self.guests[instance.id] = guest
            early = instance.id in self._terminated_early
        if early:
            self.stop(instance.id)

    def _boot(self, backend: Any, instance: Any, image: Path, address: str, imds: ImdsServer) -> Guest:
        ami = backend.amis.get(instance.image_id)
        firmware = Firmware.BIOS if getattr(ami, "boot_mode", "") == "legacy-bios" else Firmware.UEFI
        root = next(iter(instance.block_device_mapping.values()), None)
        size = backend.get_volume(root.volume_id).size if root is not None else None
        dmi_id = "ec2" + uuid.uuid4().hex[3:]
        dmi_id = f"{dmi_id[:8]}-{dmi_id[8:12]}-{dmi_id[12:16]}-{dmi_id[16:20]}-{dmi_id[20:]}"
        relay = f"cmd:{sys.executable} {RELAY} 127.0.0.1 {imds.port}"
        spec = LaunchSpec(
            image=str(image), arch=Arch.AMD64, firmware=firmware,
            instance_type=SHAPES.get(instance.instance_type, "2x1024"),
            disk_size=f"{size}G" if size else None, run_id=instance.id,
            options={
                "seed": "none", "ssh_listen": f"{address}:22", "mac": instance.nics[0].mac_address,
                "user_net": f"net=169.254.169.0/24,restrict=on,guestfwd=tcp:169.254.169.254:80-{relay}",
                "smbios": f"type=1,manufacturer=Amazon EC2,product={instance.instance_type},"
                          f"serial={dmi_id},uuid={dmi_id}",
            })
        run_dir = RunDir(f"ec2-{instance.id}")
        try:
            provider = QemuProvider()
            machine = provider.launch(provider.validate(spec), run_dir.path)
        except BaseException:
            run_dir.close()
            raise
        assert isinstance(machine, QemuMachine)
        return Guest(instance.id, address, machine, run_dir, imds)

    def reboot(self, instance_id: str) -> None:
        if instance_id in self.guests:
            self.guests[instance_id].machine.hard_reset()

    def stop(self, instance_id: str) -> None:
        with self._lock:
            guest = self.guests.get(instance_id)
            if guest is None:
                self._terminated_early.add(instance_id)
                return
            if guest.stopped:
                return
            guest.stopped = True
        self.consoles[instance_id] = guest.machine.console_log()
        errors = guest.machine.destroy()
        guest.run_dir.close()
        guest.imds.stop()
        if errors:
            raise RuntimeError(f"stopping {instance_id}: {errors}")

    def console(self, instance_id: str) -> str:
        guest = self.guests.get(instance_id)
        if guest is None:
            return ""
        return self.consoles.get(instance_id, "") if guest.stopped else guest.machine.console_log()

    def close(self) -> None:
        """Stop whatever is still running (a test that failed half-way)."""
        for instance_id in list(self.guests):
            self.stop(instance_id)
        self._launcher.shutdown()


def _instance_data(backend: Any, instance: Any, address: str) -> InstanceData:
    nic = instance.nics[0]
    groups = {g.id: g.name for g in {*instance.security_groups, *nic.group_set}}
    key = backend.key_pairs.get(instance.key_name) if instance.key_name else None
    public = key.material_public if key is not None else b""
    reservation = next((rid for rid, r in backend.reservations.items() if instance in r.instances), "")
    return InstanceData(
        instance_id=instance.id, image_id=instance.image_id, instance_type=instance.instance_type,
        region=backend.region_name, zone=instance._placement.zone, private_ip=instance.private_ip,
        private_dns=instance.private_dns_name, public_ip=address, mac=nic.mac_address,
        subnet_id=instance.subnet_id or "", vpc_id=instance.vpc_id or "", security_groups=groups,
        account_id=backend.account_id, reservation_id=reservation,
        architecture=instance.architecture or "x86_64",
        tokens_required=instance.metadata_options.http_tokens == "required",
        user_data=instance.user_data.decode().encode() if instance.user_data else None,
        public_keys={instance.key_name: public.decode() if isinstance(public, bytes) else public}
        if key is not None else {})

"""moto's EC2 instances backed by real QEMU guests booted from a local test image.

When moto runs an instance of a registered AMI, a QEMU guest boots the image (see
:mod:`.qemu_guests` for how it is reached and walled in):

* its loopback address is the instance's public IP in moto, so the AWS provider connects as it
  would on EC2 (public IP, port 22);
* 169.254.169.254 is an :class:`ImdsServer` serving the instance's moto data and the run's
  user-data (IMDSv2);
* SMBIOS says "Amazon EC2" with an ``ec2…`` UUID and serial, so cloud-init picks its Ec2
  datasource, and the NIC has the MAC moto gave the ENI.

The guest's network is walled in one of two ways.  Without a namespace it is restricted: DHCP
gives an address but no router or nameserver.  In a network namespace of the test's own
(:mod:`.netns`, whose resolver is the test's) it is what a default VPC subnet gives an instance:
a DHCP lease with a default route and a nameserver at 169.254.169.253 (the Amazon DNS server's
link-local address), which QEMU forwards to the namespace's resolver, and no IPv6 (a default
subnet has no IPv6 range); whatever else the guest sends dies at the namespace's edge.

In the namespace the VPC's private network is emulated for what its security groups open: each
instance's private address is the namespace's own (on its loopback), and a TCP port a rule of
the instance's group opens to another instance of the VPC (by address range or by group) is
forwarded from that address to the guest (QEMU's hostfwd, added and removed as rules change).
A guest reaching another's private address goes out through its user network into the
namespace and in through the other's forward: real TCP between the two guests, and nothing
where no rule lets it.

get_console_output returns the QEMU console, reboot_instances resets the machine (each reset is
recorded in ``resets``), and terminate_instances stops QEMU and removes its run dir.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from debian_cloud_tests.datasources import emulation
from debian_cloud_tests.datasources.ec2 import ImdsServer, InstanceData
from debian_cloud_tests.spec import Arch, Firmware, LaunchSpec

from .netns import PrivateNamespace
from .qemu_guests import GUEST_OPTIONS, MAX_FORWARDED_PORTS, QemuGuests, guest_hooks

SHAPES = {"t3.small": "2x2048", "t4g.small": "2x2048", "t3.micro": "2x1024", "t2.small": "1x2048"}
#: what a default VPC subnet adds to the user network: the Amazon DNS server's link-local
#: address, and no IPv6
VPC_NET = "dns=169.254.169.253,ipv6=off"


class QemuMachines(QemuGuests):
    """Boots one QEMU guest per moto instance whose AMI maps to a local image; in *namespace*
    (when given) the guests get a VPC's network, else a restricted one (see the module doc)."""

    def __init__(self, namespace: PrivateNamespace | None = None) -> None:
        super().__init__("ec2", enter=namespace.enter_mounts if namespace is not None else None)
        self.namespace = namespace
        self.in_namespace = namespace is not None
        self._rules_lock = threading.Lock()
        #: the root volume of an instance of an AMI not in ``images`` (its registered
        #: snapshot's bytes, see moto_images), as a file; and which instance booted which
        self.disk_of: Callable[[Any, str], Path | None] | None = None
        self.booted_from: dict[str, Path] = {}

    def start(self, backend: Any, instance: Any) -> None:
        image = self.images.get(instance.image_id)
        if image is None and self.disk_of is not None:  # an AMI registered from uploaded bytes
            image = self.disk_of(backend, instance.image_id)
            if image is not None:
                self.booted_from[instance.id] = image
        if image is None:
            return
        address = self.next_address()
        instance.nics[0].public_ip = address
        imds = ImdsServer(_instance_data(backend, instance, address)).start()
        spec = _spec(backend, instance, image, address, imds.port, vpc_net=self.in_namespace)
        if self.namespace is not None and instance.private_ip:
            self.namespace.add_loopback_address(instance.private_ip)
        self.boot(instance.id, address, spec, imds)
        self.rules_changed(backend)

    def rules_changed(self, backend: Any) -> None:
        """Make the forwards what the security groups now open (see the module doc)."""
        if self.namespace is None:
            return
        with self._rules_lock:
            running = [i for i in backend.all_instances()
                       if i.state == "running" and i.id in self.guests and i.private_ip]
            for instance in running:
                self.set_forwards(instance.id,
                                  {(instance.private_ip, port) for port in _opened(instance, running)})


def _groups(instance: Any) -> set[Any]:
    return {*instance.security_groups, *(g for nic in instance.nics.values() for g in nic.group_set)}


def _opened(instance: Any, running: list[Any]) -> set[int]:
    """The TCP ports *instance*'s groups open to another running instance of its VPC."""
    others = [i for i in running if i is not instance and i.vpc_id == instance.vpc_id]
    ports: set[int] = set()
    for group in _groups(instance):
        for rule in group.ingress_rules:
            if rule.ip_protocol != "tcp" or rule.to_port - rule.from_port >= MAX_FORWARDED_PORTS:
                continue
            cidr = rule.ip_range.get("CidrIp")
            source = rule.source_group.get("GroupId")
            if any((cidr and ipaddress.ip_address(o.private_ip) in ipaddress.ip_network(cidr))
                   or (source and any(g.id == source for g in _groups(o))) for o in others):
                ports.update(range(rule.from_port, rule.to_port + 1))
    return ports


def _spec(backend: Any, instance: Any, image: Path, address: str, imds_port: int,
          vpc_net: bool = False) -> LaunchSpec:
    ami = backend.amis.get(instance.image_id)
    firmware = Firmware.BIOS if getattr(ami, "boot_mode", "") == "legacy-bios" else Firmware.UEFI
    root = next(iter(instance.block_device_mapping.values()), None)
    size = backend.get_volume(root.volume_id).size if root is not None else None
    hooks = guest_hooks(address, instance.nics[0].mac_address, imds_port,
                        emulation.ec2_smbios(instance.instance_type), restrict=not vpc_net)
    if vpc_net:  # only ever unrestricted inside the test's namespace
        hooks = replace(hooks, user_net=f"{hooks.user_net},{VPC_NET}")
    return LaunchSpec(
        image=str(image), arch=Arch.AMD64, firmware=firmware,
        instance_type=SHAPES.get(instance.instance_type, "2x1024"),
        disk_size=f"{size}G" if size else None, run_id=instance.id, options=dict(GUEST_OPTIONS),
        hooks=hooks)


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

"""A GCE instance as a real QEMU guest: what the Compute Engine emulator boots for an instance of
a local image (see :mod:`.qemu_guests` for how it is reached).

SMBIOS says "Google Compute Engine" (manufacturer Google, serial ``GoogleCloud-…``), so
ds-identify and cloud-init pick the GCE datasource; the guest reaches its
:class:`GceMetadataServer` at ``metadata.google.internal``, which only resolves in the test's
namespace (see :mod:`.netns` and :mod:`.dns`), so its user network keeps its DNS.  The NIC has a
MAC of GCE's ``42:01`` form and the guest the machine type's vCPUs and memory.

:class:`GceVpc` emulates the VPC network for what its firewall rules allow between instances:
each instance's internal address (``networkIP``) is the namespace's own (on its loopback), and a
TCP port a rule opens to an instance (by target tag, or every instance of the network) from
another instance of the network (by source range or source tag) is forwarded from the first's
internal address to its guest (QEMU's hostfwd, added and removed as rules and instances change).
A guest reaching another's internal address goes out through its user network into the
namespace and in through the other's forward: real TCP between the two guests, and nothing
where no rule lets it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from debian_cloud_tests.datasources import emulation
from debian_cloud_tests.datasources.emulation import gce_mac
from debian_cloud_tests.datasources.gce import GceInstanceData, GceMetadataServer
from debian_cloud_tests.spec import Arch, Firmware, LaunchSpec

from .netns import PrivateNamespace
from .qemu_guests import GUEST_OPTIONS, MAX_FORWARDED_PORTS, QemuGuests, guest_hooks

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


class GceVpc:
    """The instances' VPC network in the test's *namespace* (see the module doc)."""

    def __init__(self, guests: QemuGuests, namespace: PrivateNamespace) -> None:
        self.guests = guests
        self.namespace = namespace

    def add_address(self, address: str) -> None:
        """An instance's internal address, on the namespace's loopback before its guest starts."""
        self.namespace.add_loopback_address(address)

    def update(self, instances: Mapping[str, dict[str, Any]],
               firewalls: Mapping[str, dict[str, Any]]) -> None:
        """Make every running guest's forwards what the rules now allow (called under the
        fake's lock whenever rules or instances change)."""
        running = [i for i in instances.values()
                   if i.get("status") == "RUNNING" and i["id"] in self.guests.guests]
        for instance in running:
            address = internal_address(instance)
            self.guests.set_forwards(instance["id"], {(address, port) for port in
                                                      opened(instance, running, firewalls.values())})


def internal_address(instance: Mapping[str, Any]) -> str:
    return str(instance["networkInterfaces"][0]["networkIP"])


def _network(instance_or_rule: Mapping[str, Any]) -> str:
    link = instance_or_rule.get("network") or instance_or_rule["networkInterfaces"][0]["network"]
    return str(link).rsplit("/", 1)[-1]  # one project: the name says which network


def _tags(instance: Mapping[str, Any]) -> set[str]:
    return set((instance.get("tags") or {}).get("items", []))


def opened(target: Mapping[str, Any], instances: Iterable[Mapping[str, Any]],
           firewalls: Iterable[Mapping[str, Any]]) -> set[int]:
    """The TCP ports the ingress rules of *target*'s network open to it from another of
    *instances* on that network (a rule with no target tags applies to every instance)."""
    network = _network(target)
    others = [i for i in instances if i is not target and _network(i) == network]
    ports: set[int] = set()
    for rule in firewalls:
        if (_network(rule) != network or rule.get("direction", "INGRESS") != "INGRESS"
                or rule.get("disabled")):
            continue
        if rule.get("targetTags") and not _tags(target) & set(rule["targetTags"]):
            continue
        ranges = [ipaddress.ip_network(r, strict=False) for r in rule.get("sourceRanges", [])]
        if not any(any(ipaddress.ip_address(internal_address(o)) in r for r in ranges)
                   or _tags(o) & set(rule.get("sourceTags", [])) for o in others):
            continue
        for allowed in rule.get("allowed", []):
            if allowed.get("IPProtocol") != "tcp":
                continue
            for spec in allowed.get("ports", []):  # none: every port, more than is forwarded
                first, _, last = str(spec).partition("-")
                low, high = int(first), int(last or first)
                if high - low < MAX_FORWARDED_PORTS:
                    ports.update(range(low, high + 1))
    return ports

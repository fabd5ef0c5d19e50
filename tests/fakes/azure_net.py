"""The Resource Manager emulator's virtual networks: what Network checks and adds to what it stores,
and, for VMs that are QEMU guests in a namespace of the test's own, the traffic it lets through.

* A NIC gets the first free private address of its subnet (Azure keeps the first four of each).
* A security rule needs its group and a priority no other rule of that group and direction has
  (``SecurityRuleParameterPriorityAlreadyTaken``); a group read shows its rules, made inline or
  one by one.
* A peering needs its network and the remote one, whose address spaces must not overlap
  (``VnetAddressSpacesOverlap``); it is ``Initiated`` until the remote network peers back,
  ``Connected`` then, and ``Disconnected`` when the other side goes.  A network read shows its
  peerings.

With the guests in a namespace (:attr:`FakeArm.namespace`) each VM's private address is the
namespace's own (on its loopback), and a TCP port is forwarded from it to the VM's guest when
another guest-backed VM may reach it there: in the same network or one peered with it
(``Connected``), and admitted by an Allow rule of the security group of the VM's subnet and of
its NIC (Azure's default rules are left out: what a test's rules do not open stays closed).  A
guest reaching another's private address goes out through its user network into the namespace
and in through the other's forward (see :meth:`.QemuGuests.set_forwards`).
"""

from __future__ import annotations

import copy
import ipaddress
import re
from typing import TYPE_CHECKING, Any

from .qemu_guests import MAX_FORWARDED_PORTS

if TYPE_CHECKING:
    from .azure_arm import FakeArm

_RULE = re.compile(r"(?P<nsg>.*/networksecuritygroups/[^/]+)/securityrules/[^/]+")
_PEERING = re.compile(r"(?P<vnet>.*/virtualnetworks/[^/]+)/virtualnetworkpeerings/[^/]+")
_VM = re.compile(r".*/providers/microsoft\.compute/virtualmachines/[^/]+")


def _fault(status: int, code: str, message: str) -> Exception:
    from .azure_arm import Fault

    return Fault(status, code, message)


def _props(resource: dict[str, Any] | None) -> dict[str, Any]:
    return (resource or {}).get("properties", {})


def children(arm: FakeArm, low: str, collection: str) -> list[dict[str, Any]]:
    under = re.compile(re.escape(f"{low}/{collection}") + r"/[^/]+")
    return [r for p, r in arm.resources.items() if under.fullmatch(p)]


def view(arm: FakeArm, low: str, resource: dict[str, Any]) -> dict[str, Any]:
    """*resource* as a GET answers it: a group with its rules, a network with its peerings."""
    if "/networksecuritygroups/" in low and not _RULE.fullmatch(low):
        out = copy.deepcopy(resource)
        inline = _props(out).get("securityRules", [])
        names = {r.get("name") for r in inline}
        out["properties"]["securityRules"] = inline + [
            r for r in children(arm, low, "securityrules") if r.get("name") not in names]
        return out
    if "/virtualnetworks/" in low and "/virtualnetworkpeerings/" not in low:
        out = copy.deepcopy(resource)
        out["properties"]["virtualNetworkPeerings"] = children(arm, low, "virtualnetworkpeerings")
        return out
    return resource


def _rules(arm: FakeArm, nsg: str) -> list[dict[str, Any]]:
    return view(arm, nsg, arm.resources[nsg])["properties"]["securityRules"]


def _spaces(vnet: dict[str, Any]) -> list[ipaddress.IPv4Network]:
    return [ipaddress.ip_network(p) for p in _props(vnet).get("addressSpace", {}).get("addressPrefixes", [])]


def check_put(arm: FakeArm, low: str, stored: dict[str, Any]) -> None:
    """Refuse, as Network does, a rule or a peering that cannot be made."""
    rule = _RULE.fullmatch(low)
    if rule:
        nsg = rule["nsg"]
        if nsg not in arm.resources:
            raise _fault(404, "ParentResourceNotFound", f"The network security group {nsg} was not found.")
        props = _props(stored)
        for other in _rules(arm, nsg):
            theirs = _props(other)
            if (other.get("name") != stored["name"] and theirs.get("priority") == props.get("priority")
                    and theirs.get("direction") == props.get("direction")):
                raise _fault(400, "SecurityRuleParameterPriorityAlreadyTaken",
                             f"Rule {other.get('name')} already has priority {props.get('priority')}.")
    peering = _PEERING.fullmatch(low)
    if peering:
        vnet = arm.resources.get(peering["vnet"])
        remote_id = str(_props(stored).get("remoteVirtualNetwork", {}).get("id", ""))
        remote = arm.resources.get(remote_id.lower())
        if vnet is None:
            raise _fault(404, "ParentResourceNotFound",
                         f"The virtual network {peering['vnet']} was not found.")
        if remote is None:
            raise _fault(400, "InvalidResourceReference", f"Resource {remote_id} referenced by "
                                                         f"{stored['id']} was not found.")
        if any(a.overlaps(b) for a in _spaces(vnet) for b in _spaces(remote)):
            raise _fault(400, "VnetAddressSpacesOverlap", f"Cannot create or update peering "
                                                         f"{stored['id']}: the address spaces overlap.")


def extra(arm: FakeArm, kind: str, stored: dict[str, Any]) -> None:
    """What Network adds: subnet ids, a NIC's private address."""
    props = _props(stored)
    if kind == "PUT virtualnetworks":
        for subnet in props.get("subnets", []):
            subnet["id"] = f"{stored['id']}/subnets/{subnet['name']}"
    if kind == "PUT networkinterfaces":
        for config in props.get("ipConfigurations", []):
            cprops = config.setdefault("properties", {})
            cprops.setdefault("privateIPAllocationMethod", "Dynamic")
            cprops["privateIPAddress"] = _free_address(arm, str(cprops.get("subnet", {}).get("id", "")),
                                                       stored["id"])


def _subnet(arm: FakeArm, subnet_id: str) -> tuple[str, dict[str, Any]] | None:
    vnet_low, _, name = subnet_id.lower().partition("/subnets/")
    vnet = arm.resources.get(vnet_low)
    found = [s for s in _props(vnet).get("subnets", []) if s.get("name", "").lower() == name]
    return (vnet_low, found[0]) if found else None


def _free_address(arm: FakeArm, subnet_id: str, nic_id: str) -> str:
    found = _subnet(arm, subnet_id)
    if found is None:
        raise _fault(400, "InvalidResourceReference", f"Resource {subnet_id} referenced by {nic_id} "
                                                      "was not found.")
    network = ipaddress.ip_network(_props(found[1])["addressPrefix"])
    used = {c["properties"].get("privateIPAddress") for r in arm.resources.values()
            if r["id"].lower() != nic_id.lower() and "/networkinterfaces/" in r["id"].lower()
            for c in _props(r).get("ipConfigurations", [])
            if str(c["properties"].get("subnet", {}).get("id", "")).lower() == subnet_id.lower()}
    return next(str(a) for a in list(network.hosts())[3:] if str(a) not in used)


def peering_states(arm: FakeArm) -> None:
    """Each peering's state from both sides: Connected when the remote network peers back."""
    for path, peering in arm.resources.items():
        match = _PEERING.fullmatch(path)
        if not match:
            continue
        props = _props(peering)
        remote = str(props.get("remoteVirtualNetwork", {}).get("id", "")).lower()
        back = remote in arm.resources and any(
            str(_props(p).get("remoteVirtualNetwork", {}).get("id", "")).lower() == match["vnet"]
            for p in children(arm, remote, "virtualnetworkpeerings"))
        if back:
            props["peeringState"] = "Connected"
        else:
            props["peeringState"] = "Disconnected" if props.get("peeringState") in (
                "Connected", "Disconnected") else "Initiated"


def private_address(arm: FakeArm, vm: dict[str, Any]) -> tuple[str, str, list[str]] | None:
    """A VM's private address, its network and the security groups over it (subnet's, NIC's)."""
    refs = _props(vm).get("networkProfile", {}).get("networkInterfaces", [])
    nic = arm.resources.get(str(refs[0]["id"]).lower()) if refs else None
    if nic is None:
        return None
    config = _props(nic)["ipConfigurations"][0]["properties"]
    found = _subnet(arm, str(config.get("subnet", {}).get("id", "")))
    if found is None or not config.get("privateIPAddress"):
        return None
    groups = [str(g["id"]).lower() for g in (_props(found[1]).get("networkSecurityGroup"),
                                            _props(nic).get("networkSecurityGroup")) if g]
    return str(config["privateIPAddress"]), found[0], groups


def _peered(arm: FakeArm, a: str, b: str) -> bool:
    return a == b or any(
        str(_props(p).get("remoteVirtualNetwork", {}).get("id", "")).lower() == b
        and _props(p).get("peeringState") == "Connected"
        for p in children(arm, a, "virtualnetworkpeerings"))


def _matches(prefix: str, address: str) -> bool:
    if prefix in ("*", "VirtualNetwork", "Any"):
        return True
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(prefix, strict=False)
    except ValueError:
        return False


def _ports(text: str) -> range:
    low, _, high = str(text).partition("-")
    if not low.isdigit() or (high and not high.isdigit()):
        return range(0)
    ports = range(int(low), int(high or low) + 1)
    return ports if len(ports) <= MAX_FORWARDED_PORTS else range(0)


def _admits(rules: list[dict[str, Any]], source: str, dest: str, port: int) -> bool:
    """The first inbound TCP rule by priority matching decides; none: closed."""
    for rule in sorted(rules, key=lambda r: _props(r).get("priority", 65000)):
        p = _props(rule)
        if p.get("direction") != "Inbound" or p.get("protocol") not in ("Tcp", "*"):
            continue
        sources = p.get("sourceAddressPrefixes") or [p.get("sourceAddressPrefix", "")]
        dests = p.get("destinationAddressPrefixes") or [p.get("destinationAddressPrefix", "")]
        ranges = p.get("destinationPortRanges") or [p.get("destinationPortRange", "")]
        if (any(_matches(s, source) for s in sources) and any(_matches(d, dest) for d in dests)
                and any(port in _ports(r) for r in ranges)):
            return p.get("access") == "Allow"
    return False


def _candidates(rules: list[dict[str, Any]]) -> set[int]:
    found: set[int] = set()
    for rule in rules:
        p = _props(rule)
        for text in p.get("destinationPortRanges") or [p.get("destinationPortRange", "")]:
            found.update(_ports(text))
    return found


def opened(arm: FakeArm, vms: dict[str, tuple[str, str, list[str]]], vm: str) -> set[int]:
    """The TCP ports of *vm* another of *vms* (VM path -> where it is) may reach."""
    address, vnet, groups = vms[vm]
    if not groups:
        return set()  # every port would be open: QEMU forwards port by port, so none is
    rules = {g: _rules(arm, g) if g in arm.resources else [] for g in groups}
    ports: set[int] = set()
    for other, (source, other_vnet, _) in vms.items():
        if other == vm or not (_peered(arm, vnet, other_vnet) and _peered(arm, other_vnet, vnet)):
            continue
        for port in set.intersection(*(_candidates(r) for r in rules.values())):
            if all(_admits(r, source, address, port) for r in rules.values()):
                ports.add(port)
    return ports


def add_address(arm: FakeArm, address: str) -> None:
    """*address* on the namespace's loopback, where the VM's forwards listen."""
    if arm.namespace is not None:
        arm.namespace.add_loopback_address(address)


def forward(arm: FakeArm) -> None:
    """Make each guest's forwards what the networks now let through (caller holds the lock)."""
    if arm.namespace is None or arm.guests is None:
        return
    vms: dict[str, tuple[str, str, list[str]]] = {}
    ids: dict[str, str] = {}
    for path, vm in arm.resources.items():
        vm_id = _props(vm).get("vmId")
        guest = arm.guests.guests.get(vm_id) if _VM.fullmatch(path) and vm_id else None
        where = private_address(arm, vm) if guest is not None and not guest.stopped else None
        if where is not None:
            vms[path], ids[path] = where, vm_id
    for path, (address, _, _) in vms.items():
        arm.guests.set_forwards(ids[path], {(address, port) for port in opened(arm, vms, path)})

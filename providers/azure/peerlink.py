"""Two Azure VMs of a run let reach each other on one TCP port.

Each launch makes a virtual network of its own, so two VMs reach each other's private address
only through a peering, made in each direction; a peering cannot join two networks whose
address spaces overlap, so a launch meant for a link takes a /24 of 10.80.0.0/12 that no other
launch of the provider has (:class:`Spaces`).  Each VM's network security group then admits the
port from the other's private address (a /32, at a priority of its own above SSH's 100).  Closing
the link deletes the peerings and the rules; they all live in the VMs' resource groups, so a
destroy (which deletes the group) removes whatever a link left.
"""

from __future__ import annotations

import ipaddress
import random
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from debian_cloud_tests.errors import DCTError, ProviderError
from debian_cloud_tests.machine import LinkEnd, PeerLink

from . import errors

if TYPE_CHECKING:
    from .machine import AzureMachine

#: a launch not meant for a link: the address space and subnet every such launch has
DEFAULT_SPACE, DEFAULT_SUBNET = "10.80.0.0/16", "10.80.0.0/24"
#: where a launch meant for a link takes its /24 (network and subnet at once)
LINK_SPACES = ipaddress.ip_network("10.80.0.0/12")
#: the first priority tried for a link's rule (the SSH rule has 100)
FIRST_PRIORITY = 200
TIMEOUT = 600.0


@dataclass(frozen=True)
class Network:
    """Where a VM is: its virtual network (id and address space) and its private address."""

    vnet_id: str
    space: str
    private_address: str


class Spaces:
    """The /24s of :data:`LINK_SPACES` handed out by one provider: two launches of a run never
    get the same one (chosen at random, so two runs of a subscription rarely do either)."""

    def __init__(self) -> None:
        self._taken: set[int] = set()
        self._lock = threading.Lock()

    def pick(self) -> tuple[str, str]:
        """A network's address space and its subnet's prefix (the same /24)."""
        count = LINK_SPACES.num_addresses // 256
        with self._lock:
            free = count - len(self._taken)
            if free <= 0:
                raise ProviderError(f"azure: every /24 of {LINK_SPACES} is taken by a launch of this run")
            index = random.choice([i for i in range(count) if i not in self._taken])
            self._taken.add(index)
        prefix = str(ipaddress.ip_network((int(LINK_SPACES.network_address) + index * 256, 24)))
        return prefix, prefix


@dataclass(frozen=True)
class _Made:
    """One child resource a link made: a peering of a network or a rule of a security group."""

    kind: str  # "peering" or "rule"
    group: str
    parent: str
    name: str


def _client(machine: AzureMachine, kind: str) -> Any:
    net = machine.clients.network
    return net.virtual_network_peerings if kind == "peering" else net.security_rules


def _gone(exc: DCTError) -> bool:
    return "NotFound" in getattr(exc, "code", "") or "NotFound" in exc.message


class AzurePeerLink(PeerLink):
    """The two networks peered both ways and each VM's group opened to the other on *port*."""

    def __init__(self, a: AzureMachine, b: AzureMachine, port: int) -> None:
        na, nb = a.network, b.network
        if na.vnet_id.lower() != nb.vnet_id.lower() and ipaddress.ip_network(na.space).overlaps(
                ipaddress.ip_network(nb.space)):
            raise ProviderError(f"azure: the networks of {a.vm} ({na.space}) and {b.vm} ({nb.space}) "
                                "overlap, and a peering cannot join them: launch both for a link "
                                "(peer_network), which gives each a /24 of its own")
        super().__init__((LinkEnd(na.private_address), LinkEnd(nb.private_address)))
        self._machines = {a.vm: a, b.vm: b}
        self._made: list[_Made] = []
        try:
            if na.vnet_id.lower() != nb.vnet_id.lower():
                for x, y in ((a, b), (b, a)):
                    self._peer(x, y)
            for x, y in ((a, b), (b, a)):
                self._open(x, y, port)
        except BaseException:
            self.close()
            raise

    def _peer(self, x: AzureMachine, y: AzureMachine) -> None:
        made = _Made("peering", x.group, x.vm, f"dct-to-{y.vm}")
        body = {"properties": {"remoteVirtualNetwork": {"id": y.network.vnet_id},
                               "allowVirtualNetworkAccess": True, "allowForwardedTraffic": False,
                               "allowGatewayTransit": False, "useRemoteGateways": False}}
        self._create(x, made, body, f"peer the network of {x.vm} with that of {y.vm}")

    def _open(self, x: AzureMachine, y: AzureMachine, port: int) -> None:
        made = _Made("rule", x.group, x.vm, f"dct-link-{port}-from-{y.vm}")
        net = x.clients.network
        try:
            nsg = errors.call(net.network_security_groups.get, "network_security_groups.get", x.group, x.vm)
        except DCTError as exc:
            raise ProviderError(f"azure: the security group of {x.vm} cannot be read: "
                                f"{exc.message}") from None
        taken = {rule.priority for rule in (nsg.security_rules or [])
                 if str(getattr(rule.direction, "value", rule.direction)) == "Inbound"
                 and rule.name != made.name}
        priority = next(p for p in range(FIRST_PRIORITY, 4097) if p not in taken)
        body = {"properties": {
            "protocol": "Tcp", "direction": "Inbound", "access": "Allow", "priority": priority,
            "sourceAddressPrefix": f"{y.network.private_address}/32", "sourcePortRange": "*",
            "destinationAddressPrefix": f"{x.network.private_address}/32",
            "destinationPortRange": str(port),
            "description": f"debian-cloud-tests: from {y.vm} for a check"}}
        self._create(x, made, body, f"open TCP port {port} of {x.vm} to {y.network.private_address}")

    def _create(self, x: AzureMachine, made: _Made, body: dict[str, Any], what: str) -> None:
        client = _client(x, made.kind)
        self._made.append(made)  # before the request: one that timed out may have made it
        try:
            errors.operation(client.begin_create_or_update, f"{made.kind} {made.name}.create",
                             made.group, made.parent, made.name, body, timeout=TIMEOUT)
        except DCTError as exc:
            raise ProviderError(f"azure: could not {what}: {exc.message}") from None

    def close(self) -> list[BaseException]:
        """Delete the rules, then the peerings; one already gone (or its group) is no failure."""
        failed: list[BaseException] = []
        made, self._made = self._made, []
        for item in reversed(made):
            client = _client(self._machines[item.parent], item.kind)
            try:
                errors.operation(client.begin_delete, f"{item.kind} {item.name}.delete",
                                 item.group, item.parent, item.name, timeout=TIMEOUT)
            except DCTError as exc:
                if not _gone(exc):
                    failed.append(ProviderError(f"azure: the {item.kind} {item.name} of {item.parent} "
                                                f"was not removed: {exc.message}"))
            except Exception as exc:  # close goes on whatever one call did
                failed.append(exc)
        return failed

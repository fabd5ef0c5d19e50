"""Which network a server joins, and which of its addresses this runner connects to.

No floating IP is created: the network (``--network``, else the only one the project can use)
must be reachable from the runner, as provider networks and public clouds' shared networks are.
An address the cloud publishes (``accessIPv4``, a floating address) is preferred to a fixed one.
Two servers of a run reach each other at their fixed addresses on the network both joined.
"""

from __future__ import annotations

from typing import Any

from debian_cloud_tests.errors import UsageError

from . import retry
from .errors import OpenStackError


def pick_network(conn: Any, given: str | None) -> Any:
    """The network named (name or id), else the single non-external one visible to the project."""
    if given:
        found = retry.find(conn.network.find_network, "find network", given)
        if found is None:
            raise UsageError(f"--network {given}: no such network (name or id) visible to this project")
        return found
    networks = retry.call(lambda: list(conn.network.networks()), "list networks")
    internal = [n for n in networks if not n.is_router_external]
    candidates = internal or networks
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise UsageError("openstack: the project sees no network; create one or give --network")
    names = ", ".join(sorted(str(n.name or n.id) for n in candidates)[:8])
    raise UsageError(f"openstack: several networks ({names}); choose one with --network")


def address_of(server: Any, network: str) -> str:
    """The address to SSH to: the published one, else floating, else fixed IPv4, else IPv6."""
    if server.access_ipv4:
        return str(server.access_ipv4)
    entries = [a for a in (server.addresses or {}).get(network, [])] or \
        [a for nets in (server.addresses or {}).values() for a in nets]
    ranked = sorted(entries, key=lambda a: (a.get("OS-EXT-IPS:type") != "floating", a.get("version") != 4))
    if ranked:
        return str(ranked[0]["addr"])
    if server.access_ipv6:
        return str(server.access_ipv6)
    raise OpenStackError(f"openstack: server {server.name} is ACTIVE without any address")


def fixed_address(server: Any, network: str) -> str:
    """The server's fixed address on *network* (IPv4 before IPv6), "" without one."""
    entries = [a for a in (server.addresses or {}).get(network, [])
               if a.get("OS-EXT-IPS:type", "fixed") == "fixed"]
    ranked = sorted(entries, key=lambda a: a.get("version") != 4)
    return str(ranked[0]["addr"]) if ranked else ""

"""Two Azure VMs of a run linked for a check (network_perf's peer) through the real SDK clients
against the fake Resource Manager: each launch meant for a link has an address space of its own,
the link peers the two networks both ways and opens the port in each VM's security group to the
other's private address; closing it, or destroying the VMs, leaves nothing of it."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from debian_cloud_tests.providers.azure import peerlink

from debian_cloud_tests.errors import ProviderError

from .fakes.azure_arm import FakeArm
from .test_provider_azure import arm, make_spec, provider

FIXTURES = (arm,)  # the Resource Manager fake's, as the provider's tests make it
PORT = 5201


def two(fake: FakeArm, tmp_path: Path, peer_network: bool = True) -> tuple[Any, Any]:
    p = provider(fake)
    spec = p.validate(replace(make_spec(), peer_network=peer_network))
    machines = []
    for n in ("a", "b"):
        (tmp_path / n).mkdir()
        machines.append(p.launch(spec, tmp_path / n))
    return machines[0], machines[1]


def _get(fake: FakeArm, path: str) -> dict[str, Any]:
    _, body, _ = fake.handle("GET", path, {}, None)
    return body


def _vnet(fake: FakeArm, m: Any) -> dict[str, Any]:
    return _get(fake, m.network.vnet_id)


def _nic_address(fake: FakeArm, m: Any) -> str:
    nic = fake.resources[m.network.vnet_id.lower().replace("virtualnetworks", "networkinterfaces")]
    return str(nic["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"])


def _inbound(fake: FakeArm, m: Any) -> list[tuple[int, str, str, str]]:
    nsg = _get(fake, m.network.vnet_id.replace("virtualNetworks", "networkSecurityGroups"))
    return sorted((p["priority"], p["destinationPortRange"], p["sourceAddressPrefix"],
                   p.get("destinationAddressPrefix", ""))
                  for p in (r["properties"] for r in nsg["properties"]["securityRules"]))


def test_launches_for_a_link_get_address_spaces_of_their_own(arm: FakeArm, tmp_path: Path) -> None:
    a, b = two(arm, tmp_path)
    spaces = [ipaddress.ip_network(m.network.space) for m in (a, b)]
    assert all(s.prefixlen == 24 and s.subnet_of(peerlink.LINK_SPACES) for s in spaces)
    assert not spaces[0].overlaps(spaces[1])
    for m, space in zip((a, b), spaces, strict=True):
        props = _vnet(arm, m)["properties"]
        assert props["addressSpace"]["addressPrefixes"] == [str(space)]
        assert props["subnets"][0]["properties"]["addressPrefix"] == str(space)
        # the private address is the NIC's, the first Azure hands out in the subnet
        assert m.network.private_address == _nic_address(arm, m) == str(space.network_address + 4)
    assert a.destroy() == [] and b.destroy() == [] and arm.leftovers() == {}


def test_a_link_peers_the_networks_opens_the_port_and_close_removes_both(arm: FakeArm,
                                                                          tmp_path: Path) -> None:
    """Each network peered with the other (Connected), each group admitting the port from the
    other's private address alone; close leaves the networks and groups as they were."""
    a, b = two(arm, tmp_path)
    before = {m.vm: _inbound(arm, m) for m in (a, b)}
    link = a.link_to(b, PORT)
    assert [end.address for end in link.ends] == [a.network.private_address, b.network.private_address]
    assert all(end.mac is None for end in link.ends)  # the private addresses are the VMs' already
    for x, y in ((a, b), (b, a)):
        (peering,) = _vnet(arm, x)["properties"]["virtualNetworkPeerings"]
        props = peering["properties"]
        assert props["remoteVirtualNetwork"]["id"].lower() == y.network.vnet_id.lower()
        assert props["allowVirtualNetworkAccess"] is True and props["peeringState"] == "Connected"
        rule = (peerlink.FIRST_PRIORITY, str(PORT), f"{y.network.private_address}/32",
                f"{x.network.private_address}/32")
        opened = sorted([*before[x.vm], rule])
        assert _inbound(arm, x) == opened
    assert link.close() == []
    assert link.close() == []  # twice is nothing more
    for m in (a, b):
        assert _vnet(arm, m)["properties"]["virtualNetworkPeerings"] == []
        assert _inbound(arm, m) == before[m.vm]
    assert a.destroy() == [] and b.destroy() == [] and arm.leftovers() == {}


def test_a_link_left_open_is_gone_with_the_machines(arm: FakeArm, tmp_path: Path) -> None:
    a, b = two(arm, tmp_path)
    a.link_to(b, PORT)
    assert any("/virtualnetworkpeerings/" in p for p in arm.resources)
    assert any("/securityrules/" in p for p in arm.resources)
    assert a.destroy() == []
    (left,) = [r for p, r in arm.resources.items() if "/virtualnetworkpeerings/" in p]
    assert left["properties"]["peeringState"] == "Disconnected"  # b's, its remote network gone
    assert b.destroy() == [] and arm.leftovers() == {}


def test_a_link_that_fails_half_way_leaves_nothing_of_it(arm: FakeArm, tmp_path: Path) -> None:
    a, b = two(arm, tmp_path)
    arm.fail("PUT securityrules", 400, "SecurityRuleInvalidAddressPrefix", times=1)
    with pytest.raises(ProviderError, match=f"could not open TCP port {PORT} of {a.vm}"):
        a.link_to(b, PORT)
    assert not [p for p in arm.resources if "/virtualnetworkpeerings/" in p or "/securityrules/" in p]
    assert a.destroy() == [] and b.destroy() == [] and arm.leftovers() == {}


def test_a_link_takes_a_priority_no_rule_has(arm: FakeArm, tmp_path: Path) -> None:
    a, b = two(arm, tmp_path)
    first = a.link_to(b, PORT)
    second = a.link_to(b, PORT + 1)
    priorities = [p for p, *_ in _inbound(arm, a)]
    assert sorted(priorities) == [100, peerlink.FIRST_PRIORITY, peerlink.FIRST_PRIORITY + 1]
    assert second.close() == [] and first.close() == []
    assert a.destroy() == [] and b.destroy() == [] and arm.leftovers() == {}


def test_overlapping_networks_are_not_linked(arm: FakeArm, tmp_path: Path) -> None:
    """Two launches not meant for a link share Azure's one address space: one line, and nothing
    was made."""
    a, b = two(arm, tmp_path, peer_network=False)
    assert a.network.space == b.network.space == peerlink.DEFAULT_SPACE
    with pytest.raises(ProviderError) as raised:
        a.link_to(b, PORT)
    message = str(raised.value)
    assert "\n" not in message and f"{a.vm} (10.80.0.0/16) and {b.vm} (10.80.0.0/16) overlap" in message
    assert not [p for p in arm.resources if "/virtualnetworkpeerings/" in p or "/securityrules/" in p]
    assert a.destroy() == [] and b.destroy() == [] and arm.leftovers() == {}


def test_the_fake_refuses_a_peering_of_overlapping_networks(arm: FakeArm, tmp_path: Path) -> None:
    """As Network does, so a provider that skipped its own check would fail there too."""
    from azure.core.exceptions import HttpResponseError

    a, b = two(arm, tmp_path, peer_network=False)
    peerings = a.clients.network.virtual_network_peerings
    with pytest.raises(HttpResponseError, match="VnetAddressSpacesOverlap"):
        peerings.begin_create_or_update(a.group, a.vm, "p", {"properties": {
            "remoteVirtualNetwork": {"id": b.network.vnet_id}}}).result()
    assert a.destroy() == [] and b.destroy() == [] and arm.leftovers() == {}


def test_a_machine_of_another_cloud_is_not_linked(arm: FakeArm, tmp_path: Path) -> None:
    a, b = two(arm, tmp_path)
    with pytest.raises(NotImplementedError, match="not an Azure VM"):
        a.link_to(object(), PORT)  # type: ignore[arg-type]
    assert a.destroy() == [] and b.destroy() == []

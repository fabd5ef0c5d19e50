"""Network checks: route, lease, name resolution, MTU, and configuration rendered by cloud-init."""

from __future__ import annotations

import json
import re

import pytest

from debian_cloud_tests.facts import Probe
from debian_cloud_tests.probes import IP_LINKS, dump_files, dumped_files, ip_links, link_macs

#: the name the DNS check looks up: the archive every Debian instance updates from
LOOKUP = "deb.debian.org"

PROBES = [
    Probe("route_default", "ip -j route show default"),
    IP_LINKS,
    # a DHCP client gives its address a lifetime: the kernel marks it dynamic, a static one not
    Probe("ipv4_addrs", "ip -j -4 addr show"),
    # the MTU the platform's DHCP server offered (option 26), as dhclient and networkd keep it
    Probe("dhcp_mtu", "cat /var/lib/dhcp/dhclient*.leases /run/systemd/netif/leases/* "
          "2>/dev/null | sed -n 's/^ *option interface-mtu \\([0-9]*\\);/\\1/p; s/^MTU=\\([0-9]*\\)$/\\1/p'",
          root=True),
    # the addresses DHCP clients hold leases for (networkd's ADDRESS=, dhclient's fixed-address):
    # a lease that never expires (Azure's) leaves the kernel's address without a lifetime
    Probe("dhcp_lease_addresses", "cat /run/systemd/netif/leases/* /var/lib/dhcp/dhclient*.leases "
          "/var/lib/dhcp/dhclient*.lease 2>/dev/null | sed -n 's/^ADDRESS=\\(.*\\)$/\\1/p; "
          "s/^ *fixed-address \\([^;]*\\);/\\1/p'", root=True),
    Probe("net_config_files", dump_files("/etc/network/interfaces /etc/network/interfaces.d/* "
                                         "/etc/netplan/*.yaml /etc/systemd/network/*.network "
                                         "/run/systemd/network/*.network"), root=True),
    Probe("resolv_conf", "cat /etc/resolv.conf"),
    # through the guest's own resolver stack (nsswitch, resolv.conf or resolved): any answer, a
    # name that does not exist there included, shows a nameserver was reached
    Probe("dns_lookup", "timeout -k 2 20 python3 -I -S -c '\n"
          "import socket\n"
          "try:\n"
          f"    socket.getaddrinfo(\"{LOOKUP}\", 443)\n"
          "    print(\"answered: the name resolves\")\n"
          "except socket.gaierror as e:\n"
          "    answered = e.errno in (socket.EAI_NONAME, -5)  # NXDOMAIN, or no address of that kind\n"
          "    print((\"answered: \" if answered else \"no answer: \") + str(e))\n'"),
    Probe("hostname_resolves", "getent hosts \"$(hostname)\""),
    Probe("localhost_resolves", "getent ahosts localhost; true"),
    Probe("persistent_net_rules", "cat /etc/udev/rules.d/*net*.rules 2>/dev/null; true"),
    Probe("ipv6_global", "ip -6 -o addr show scope global; ip -6 -o addr show scope site; "
          "ip -6 route show default"),
]
#: what pins a netplan or systemd-networkd configuration to one network: static addresses,
#: gateways, routes, DHCP turned off
STATIC_NETWORK = re.compile(r"(?im)^\s*(addresses:|gateway[46]?:|routes:|dhcp4:\s*(?:false|no)\b|"
                            r"Address=|Gateway=|DHCP=no\b)")
RENDERED = re.compile(r"/etc/network/interfaces\.d/50-cloud-init|/etc/netplan/50-cloud-init\.yaml|"
                      r"/run/systemd/network/10-cloud-init-\S+\.network")


def _default_iface(facts) -> str | None:
    try:
        routes = json.loads(facts["route_default"].stdout or "[]")
    except ValueError:
        return None
    return routes[0].get("dev") if routes else None


def _skip_without_route(machine) -> None:
    """An isolated platform network (e.g. qemu --qemu-network=isolated) hands out no router or DNS."""
    if machine.facts.extra.get("default_route") == "no":
        pytest.skip(f"not applicable: {machine.facts.provider} offers this instance no default "
                    "route or nameserver (isolated network)")


def test_default_route(facts, machine) -> None:
    """There is an IPv4 default route."""
    _skip_without_route(machine)
    assert _default_iface(facts), ("no default route: the instance cannot reach anything off-link; "
                                   "let cloud-init render the platform's network (DHCP) instead of "
                                   "a static configuration in the image")


def _routeless_iface(links: list[dict]) -> str | None:
    """On a platform that offers no router, the primary interface is the one non-loopback link."""
    names = [link.get("ifname") for link in links if link.get("ifname") != "lo"]
    return names[0] if len(names) == 1 else None


def test_dhcp_lease(facts, machine) -> None:
    """The primary interface's address comes from a DHCP lease (a lifetime on the address, or a
    DHCP client's lease for it where the platform's lease never expires), not a static
    configuration."""
    links = json.loads(facts["ipv4_addrs"].stdout or "[]")
    iface = _default_iface(facts)
    if iface is None and machine.facts.extra.get("default_route") == "no":
        iface = _routeless_iface(links)
    if iface is None:
        pytest.fail("no default route, so no primary interface: the network was not configured "
                    "(a static configuration in the image?)", pytrace=False)
    addrs = [a for link in links if link.get("ifname") == iface for a in link.get("addr_info", [])]
    assert addrs, f"{iface} has no IPv4 address"
    leased = set(facts["dhcp_lease_addresses"].lines())
    assert any(a.get("dynamic") or a.get("local") in leased for a in addrs), (
        f"{iface}'s address {addrs[0].get('local')}/{addrs[0].get('prefixlen')} is static (no lease "
        "lifetime): the image configures it itself; let cloud-init render DHCP for the platform")


def test_nameserver_configured(facts, machine) -> None:
    """/etc/resolv.conf names at least one nameserver."""
    _skip_without_route(machine)
    assert re.search(r"^nameserver\s+\S+", facts["resolv_conf"].stdout, re.M), (
        "no nameserver in /etc/resolv.conf: names cannot be resolved; let DHCP (dhclient or "
        "systemd-resolved) write it, and do not ship a static resolv.conf in the image")


def test_dns_resolves(facts, machine) -> None:
    """A DNS lookup through the instance's resolver gets an answer from the platform's nameserver."""
    _skip_without_route(machine)
    out = facts["dns_lookup"]
    said = out.stdout.strip() or out.why()
    assert said.startswith("answered"), (
        f"looking up {LOOKUP} got no answer ({said}): no nameserver is reachable; let DHCP set "
        "the platform's nameserver (resolv.conf or systemd-resolved) and keep `dns` in "
        "/etc/nsswitch.conf's hosts line")


def test_hostname_resolves(facts) -> None:
    """The hostname resolves locally (/etc/hosts or nss-myhostname), so sudo and others do not stall."""
    out = facts["hostname_resolves"]
    assert out.ok and out.lines(), ("the hostname does not resolve: let cloud-init manage /etc/hosts "
                                    "(manage_etc_hosts: true) or install libnss-myhostname")


def test_mtu_matches_platform(facts, machine) -> None:
    """The primary interface's MTU is the platform's (as it declares it or its DHCP offers it,
    else 1500)."""
    _skip_without_route(machine)
    iface = _default_iface(facts)
    if iface is None:
        pytest.fail("no default route, so no primary interface to check", pytrace=False)
    links = {link["ifname"]: link for link in ip_links(facts)}
    offered = facts["dhcp_mtu"].lines()
    # what the platform says, else what its DHCP server offered, else Ethernet's default
    expected = int(machine.facts.extra.get("mtu") or (offered[-1] if offered else 1500))
    assert links[iface]["mtu"] == expected, (
        f"{iface} MTU {links[iface]['mtu']}, platform MTU {expected}: take the MTU from DHCP (the "
        "platform's option 26) and set none in the image's network configuration")


def test_network_rendered_by_cloud_init(facts) -> None:
    """cloud-init rendered the network configuration for this instance."""
    assert any(RENDERED.fullmatch(path) for path, _ in dumped_files(facts["net_config_files"].stdout)), (
        "no network configuration rendered by cloud-init (50-cloud-init): the image's own "
        "configuration is in use; remove it and let cloud-init render the platform's")


def test_no_leftover_interface_config(facts) -> None:
    """Nothing but cloud-init's rendering pins an interface's configuration: no static address,
    gateway or another machine's NIC from the build host.  A fallback that asks DHCP on any
    interface by name (Debian's images ship one for netplan) pins nothing and passes; under
    ifupdown, whose networking service waits for every interface it names, any interface but lo
    counts."""
    macs = link_macs(facts)
    leftovers = []
    for path, body in dumped_files(facts["net_config_files"].stdout):
        if RENDERED.fullmatch(path) or path.startswith("/run/"):
            continue
        if path.startswith("/etc/network/interfaces"):
            ifaces = [i for i in re.findall(r"^\s*iface\s+(\S+)", body, re.M) if i != "lo"]
            if ifaces:
                leftovers.append(f"{path}: {', '.join(ifaces)}")
            continue
        pinned = STATIC_NETWORK.findall(body) + [
            f"MAC {mac}" for mac in re.findall(r"(?i)\b((?:[0-9a-f]{2}:){5}[0-9a-f]{2})\b", body)
            if mac.lower() not in macs]
        if pinned:
            leftovers.append(f"{path}: {', '.join(dict.fromkeys(p.strip() for p in pinned))}")
    assert not leftovers, (f"interface configuration not from cloud-init: {leftovers}; remove it "
                           "from the image so cloud-init's rendering is the only one")


def test_ipv6_when_offered(facts, machine) -> None:
    """Where the platform offers IPv6, the instance took an address and a default route."""
    if machine.facts.extra.get("ipv6") != "yes":
        pytest.skip(f"not applicable: {machine.facts.provider} offers no IPv6 to this instance")
    text = facts["ipv6_global"].stdout
    assert re.search(r"inet6 (?!fe80)", text), ("no IPv6 address although the platform offers "
                                                "IPv6: IPv6 is disabled (sysctl or kernel command "
                                                "line) or router advertisements are ignored")
    assert "default" in text, ("no IPv6 default route although the platform offers IPv6: router "
                               "advertisements are ignored (net.ipv6.conf.*.accept_ra)")


def test_localhost_resolves(facts) -> None:
    """localhost resolves to the loopback address (services binding to it rely on that)."""
    addresses = {line.split()[0] for line in facts["localhost_resolves"].lines()}
    assert addresses & {"127.0.0.1", "::1"}, (
        f"localhost resolves to {sorted(addresses) or 'nothing'}; /etc/hosts (or cloud-init's "
        "hosts template) must map it to 127.0.0.1 and ::1")
    assert addresses <= {"127.0.0.1", "::1"}, f"localhost resolves off the loopback: {sorted(addresses)}"


def test_no_interface_rules_for_other_machines(facts) -> None:
    """udev's network rules name only this instance's NICs (rules from the build machine rename
    or hide the interfaces of every instance)."""
    own = link_macs(facts)
    named = re.findall(r'ATTR\{address\}=="([0-9a-fA-F:]{17})"', facts["persistent_net_rules"].stdout)
    foreign = sorted({mac.lower() for mac in named} - own)
    assert not foreign, (f"udev rules in /etc/udev/rules.d name NICs this instance lacks: {foreign}; "
                         "remove them from the image")

"""Given by path beside the suites in the emulated-cloud runs (not collected on its own): the
guest's DHCP lease holds the domain name and search list the emulated cloud's DHCP server sent,
and a guest whose DHCP client writes resolv.conf (dhclient) searches them.

A probe of the emulation rather than a check of the image: Debian's networkd images rightly
leave DHCP's domains out of their search list (networkd's UseDomains defaults to off).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

LEASES = "/var/lib/dhcp/dhclient*.leases /run/systemd/netif/leases/*"


def test_lease_holds_the_clouds_domain(host: Any, machine: Any) -> None:
    if "dhcp_domain" not in machine.facts.extra:
        pytest.skip("not applicable: no cloud is emulated")
    domain = machine.facts.extra["dhcp_domain"]
    search = machine.facts.extra["dhcp_search"].split()
    leases = host.run(f"sudo -n sh -c 'cat {LEASES} 2>/dev/null'").stdout
    # dhclient: option domain-name "d"; option domain-search "a.", "b."
    # networkd: DOMAINNAME=d, DOMAIN_SEARCH_LIST=a b
    names = set(re.findall(r'domain-name "([^"]+)"|DOMAINNAME=(\S+)', leases))
    assert domain in {a or b for a, b in names}, f"the lease names {names}, not {domain}:\n{leases}"
    for suffix in search:
        assert suffix in leases, f"the lease lacks search domain {suffix}:\n{leases}"
    if host.file("/var/lib/dhcp").exists and "domain-name" in leases:
        resolv = host.file("/etc/resolv.conf").content_string
        searched = " ".join(line.split(None, 1)[1] for line in resolv.splitlines()
                            if line.startswith(("search ", "domain ")))
        for suffix in search or [domain]:
            assert suffix in searched, f"resolv.conf searches {searched!r}, not {suffix}"

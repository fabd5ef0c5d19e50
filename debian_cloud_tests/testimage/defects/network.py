"""Defects the network suite's checks catch: configuration from the build host, names and MTUs
pinned, IPv6 switched off."""

from __future__ import annotations

import re
from pathlib import Path

from ..disk import DiskLayout
from . import defect
from .plant import (
    append_cmdline,
    cloud_cfg,
)


@defect("static-network")
def static_network(tree: Path, arch: str, layout: DiskLayout) -> None:
    """The build host's static network configuration, no gateway, odd MTU; cloud-init's disabled."""
    cloud_cfg(tree, "99-no-network.cfg", "network: {config: disabled}\n")
    append_cmdline(tree, "net.ifnames=0")  # the build host's config names eth0
    (tree / "etc/network/interfaces.d/build-host").write_text(
        "auto eth0\niface eth0 inet static\n    address 10.0.2.15/24\n    mtu 1400\n")


@defect("localhost-unmapped")
def localhost_unmapped(tree: Path, arch: str, layout: DiskLayout) -> None:
    """localhost dropped from the hosts file and from cloud-init's template for it."""
    for rel in ("etc/hosts", "etc/cloud/templates/hosts.debian.tmpl"):
        path = tree / rel
        path.write_text("\n".join(ln for ln in path.read_text().splitlines()
                                  if not re.search(r"\blocalhost\b", ln)) + "\n")


@defect("foreign-nic-rule")
def foreign_nic_rule(tree: Path, arch: str, layout: DiskLayout) -> None:
    """The build machine's NIC naming rule, left in udev's rules."""
    rules = tree / "etc/udev/rules.d"
    rules.mkdir(parents=True, exist_ok=True)
    (rules / "75-build-persistent-net.rules").write_text(
        'SUBSYSTEM=="net", ACTION=="add", ATTR{address}=="52:54:00:de:ad:01", NAME="eth9"\n')


@defect("mtu-pinned")
def mtu_pinned(tree: Path, arch: str, layout: DiskLayout) -> None:
    """An MTU the build host needed, pinned for every NIC (udev applies .link files at boot)."""
    links = tree / "etc/systemd/network"
    links.mkdir(parents=True, exist_ok=True)
    (links / "10-build-mtu.link").write_text("[Match]\nType=ether\n\n[Link]\nMTUBytes=1400\n")


@defect("ipv6-disabled")
def ipv6_disabled(tree: Path, arch: str, layout: DiskLayout) -> None:
    (tree / "etc/sysctl.d/zz-no-ipv6.conf").write_text(
        "net.ipv6.conf.all.disable_ipv6 = 1\nnet.ipv6.conf.default.disable_ipv6 = 1\n")

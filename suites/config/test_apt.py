"""apt: the release with -updates and -security, nothing left from the build, dpkg healthy."""

from __future__ import annotations

import re

import pytest

from debian_cloud_tests.facts import Probe

#: every apt source file, each after a "## PATH" line (one-line and deb822 formats)
APT_SOURCES = Probe("apt_sources", "for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list "
                    "/etc/apt/sources.list.d/*.sources /etc/apt/mirrors/*.list; do [ -f \"$f\" ] && "
                    "{ echo \"## $f\"; cat \"$f\"; }; done; true")

PROBES = [
    Probe("os_release", "cat /etc/os-release"),
    APT_SOURCES,
    Probe("apt_proxy", "apt-config dump | grep -iE '::(proxy|http::proxy|https::proxy|ftp::proxy)' "
          "| grep -viE '\"(DIRECT|false)?\";$'"),
    Probe("dpkg_audit", "dpkg --audit"),
    Probe("uu_status", "dpkg-query -W -f='${Status}' unattended-upgrades"),
    Probe("apt_periodic", "apt-config dump APT::Periodic"),
    Probe("uu_origins", "apt-config dump Unattended-Upgrade::Origins-Pattern "
          "Unattended-Upgrade::Allowed-Origins"),
]
POCKETS = ["release", "updates", "security"]


def _codename(facts) -> str:
    m = re.search(r"^VERSION_CODENAME=\"?(\w+)", facts["os_release"].stdout, re.M)
    if not m:
        pytest.fail("/etc/os-release has no VERSION_CODENAME", pytrace=False)
    return m.group(1)


def _suites(facts) -> set[tuple[str, str]]:
    """(uri, suite) pairs of every enabled source, one-line and deb822 formats."""
    text = facts["apt_sources"].stdout
    pairs: set[tuple[str, str]] = set()
    for line in text.splitlines():
        m = re.match(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
        if m:
            pairs.add((m.group(1), m.group(2)))
    for stanza in re.split(r"\n\s*\n|^## ", text, flags=re.M):
        fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.M))
        if "deb" not in fields.get("Types", "").split() or fields.get("Enabled", "yes") == "no":
            continue
        for uri in fields.get("URIs", "").split():
            for suite in fields.get("Suites", "").split():
                pairs.add((uri, suite))
    return pairs


@pytest.mark.parametrize("pocket", POCKETS)
def test_apt_source(facts, pocket: str) -> None:
    """apt has the release, its -updates and its -security suites enabled."""
    release = _codename(facts)
    wanted = {"release": release, "updates": f"{release}-updates", "security": f"{release}-security"}
    suites = {suite for _, suite in _suites(facts)}
    assert wanted[pocket] in suites, (
        f"apt sources lack {wanted[pocket]} (enabled: {sorted(suites) or 'none'}); add it to "
        "/etc/apt/sources.list.d/debian.sources")


def test_no_build_proxy_left(facts) -> None:
    """No apt proxy from the build host is configured."""
    found = facts["apt_proxy"].lines()
    assert not found, f"apt proxy left from the build: {found}; remove it from /etc/apt/apt.conf.d"


def test_dpkg_audit_clean(facts) -> None:
    """`dpkg --audit` finds no half-installed or unconfigured package."""
    out = facts["dpkg_audit"]
    assert out.ok and not out.stdout.strip(), f"dpkg --audit:\n{(out.stdout or out.why())[:800]}"


def test_unattended_upgrades_enabled(facts) -> None:
    """unattended-upgrades is installed, enabled by APT::Periodic, and takes security updates."""
    assert facts["uu_status"].stdout.strip() == "install ok installed", (
        "unattended-upgrades is not installed")
    periodic = dict(re.findall(r'^APT::Periodic::(\S+) "(\S*)";', facts["apt_periodic"].stdout, re.M))
    disabled = [k for k in ("Update-Package-Lists", "Unattended-Upgrade")
                if periodic.get(k, "0") in ("0", "", "false")]
    assert not disabled, (f"APT::Periodic {disabled} not enabled; ship "
                          "/etc/apt/apt.conf.d/20auto-upgrades")
    origins = facts["uu_origins"].stdout
    assert re.search(r"security", origins, re.I), "unattended-upgrades has no security origin"

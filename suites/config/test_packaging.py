"""Packaging state an image build can leave wrong: unauthenticated sources, pins or holds that
block security updates, a policy-rc.d that stops services from starting, foreign architectures,
a package cache, and the packages every Debian cloud image relies on."""

from __future__ import annotations

import re

import pytest

from debian_cloud_tests.facts import Probe
from debian_cloud_tests.probes import DPKG_PACKAGES

from .test_apt import APT_CONFIG, APT_SOURCES, apt_config, dpkg_packages

#: packages whose absence breaks a Debian cloud image quietly: TLS to the archive, the archive's
#: signatures, growing the root partition
REQUIRED_PACKAGES = ("ca-certificates", "debian-archive-keyring", "cloud-guest-utils")
#: apt options that accept unsigned, unsigned-downgraded or weakly signed repositories
INSECURE = re.compile(r'^(APT::Get::AllowUnauthenticated|Acquire::AllowInsecureRepositories|'
                      r'Acquire::AllowDowngradeToInsecureRepositories|Acquire::AllowWeakRepositories) '
                      r'"(1|true|yes)";', re.I)

PROBES = [
    APT_SOURCES,
    APT_CONFIG,
    Probe("apt_preferences", "for f in /etc/apt/preferences /etc/apt/preferences.d/*; do "
          "[ -f \"$f\" ] && { echo \"## $f\"; cat \"$f\"; }; done; true"),
    DPKG_PACKAGES,
    Probe("policy_rc_d", "[ -e /usr/sbin/policy-rc.d ] && echo /usr/sbin/policy-rc.d; true"),
    Probe("foreign_arches", "dpkg --print-foreign-architectures"),
    # where apt keeps downloaded packages (Dir::Cache::archives); an image may remove the directory
    Probe("cached_debs", "eval \"$(apt-config shell CACHE Dir::Cache::archives/d)\"; "
          "[ ! -e \"${CACHE:-/var/cache/apt/archives}\" ] || "
          "find \"${CACHE:-/var/cache/apt/archives}\" -name '*.deb'", root=True),
]


def test_apt_sources_authenticated(facts) -> None:
    """apt verifies every source's signatures: no trusted=yes, no allow-insecure, no apt option
    that accepts unsigned or downgraded repositories."""
    text = facts["apt_sources"].stdout
    lax = re.findall(r"(?im)^\s*(?:deb(?:-src)?\s+\[[^\]]*(?:trusted|allow-insecure|allow-weak)=yes[^\]]*\].*"
                     r"|(?:Trusted|Allow-Insecure|Allow-Weak):\s*yes)\s*$", text)
    lax += [line for line in apt_config(facts) if INSECURE.match(line)]
    assert not lax, f"apt accepts unauthenticated packages: {[x.strip() for x in lax][:5]}; remove it"


def _negative_pins(text: str) -> list[str]:
    found = []
    for stanza in re.split(r"\n\s*\n|^## ", text, flags=re.M):
        fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.M))
        priority = fields.get("Pin-Priority", "").strip()
        if re.fullmatch(r"-\d+", priority):
            found.append(f"{fields.get('Package', '?')} ({fields.get('Pin', '?')}) {priority}")
    return found


def test_no_pin_blocking_updates(facts) -> None:
    """No apt pin with a negative priority: it silently keeps packages from ever updating."""
    blocked = _negative_pins(facts["apt_preferences"].stdout)
    assert not blocked, f"apt pins that block packages: {blocked[:5]}; remove them from the image"


def test_no_held_packages(facts) -> None:
    """No package is on hold (a held package never gets its security updates)."""
    held = sorted(name for name, (_, want) in dpkg_packages(facts).items() if want == "hold")
    assert not held, f"packages on hold: {held}; `apt-mark unhold` them in the image"


def test_no_policy_rc_d(facts) -> None:
    """No policy-rc.d from the build: it stops upgraded services from restarting."""
    assert not facts["policy_rc_d"].lines(), "/usr/sbin/policy-rc.d left from the build; remove it"


def test_no_foreign_architectures(facts) -> None:
    """dpkg has no foreign architecture enabled from the build."""
    foreign = facts["foreign_arches"].lines()
    assert not foreign, f"foreign architectures enabled: {foreign}; `dpkg --remove-architecture` them"


def test_apt_cache_clean(facts) -> None:
    """No downloaded .deb is left in apt's cache (dead weight in every instance's disk); a cache
    directory the image removed holds none."""
    out = facts["cached_debs"]
    assert out.ok, f"cannot search apt's cache: {out.why()}"
    debs = out.lines()
    assert not debs, f"{len(debs)} .deb files left in apt's cache ({debs[0]}, …); `apt-get clean`"


@pytest.mark.parametrize("package", REQUIRED_PACKAGES)
def test_package_installed(facts, package: str) -> None:
    """The packages a Debian cloud image relies on are installed."""
    state = dpkg_packages(facts).get(package, ("not known to dpkg", ""))[0]
    assert state.startswith("ii"), f"{package} is not installed ({state}); install it"

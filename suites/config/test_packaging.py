"""Packaging state an image build can leave wrong: unauthenticated sources, pins or holds that
block security updates, a policy-rc.d that stops services from starting, foreign architectures,
a package cache, packages removed but not purged or with unmet dependencies, kernels older than
the one booted, and the packages every Debian cloud image relies on."""

from __future__ import annotations

import re

import pytest

from debian_cloud_tests.facts import Probe
from debian_cloud_tests.gate import debversion
from debian_cloud_tests.probes import DPKG_PACKAGES, dump_files, dumped_files

from .test_apt import APT_CONFIG, APT_SOURCES, Package, apt_config, dpkg_packages

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
    Probe("apt_preferences", dump_files("/etc/apt/preferences /etc/apt/preferences.d/*")),
    DPKG_PACKAGES,
    Probe("policy_rc_d", "[ -e /usr/sbin/policy-rc.d ] && echo /usr/sbin/policy-rc.d; true"),
    Probe("foreign_arches", "dpkg --print-foreign-architectures"),
    # where apt keeps downloaded packages (Dir::Cache::archives); an image may remove the directory
    Probe("cached_debs", "eval \"$(apt-config shell CACHE Dir::Cache::archives/d)\"; "
          "[ ! -e \"${CACHE:-/var/cache/apt/archives}\" ] || "
          "find \"${CACHE:-/var/cache/apt/archives}\" -name '*.deb'", root=True),
    # apt's own verdict on the installed set's dependencies (its exit status says it), against
    # no package lists: what is installed must satisfy itself, and parsing the mirror's lists
    # (seconds of CPU under TCG) would judge nothing more
    # (it only reads: no lock, so apt-daily or a cloud agent running apt does not make it fail)
    Probe("apt_check", "d=$(mktemp -d) && mkdir -p \"$d/partial\" && apt-get -q check "
          "-o Debug::NoLocking=1 "
          "-o Dir::State::Lists=\"$d\" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=; "
          "rc=$?; rm -rf \"$d\"; exit $rc", root=True),
    Probe("kernel_release", "uname -r"),
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
    for stanza in (s for _, body in dumped_files(text) for s in re.split(r"\n\s*\n", body)):
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
    held = sorted(name for name, package in dpkg_packages(facts).items() if package.want == "hold")
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
    state = dpkg_packages(facts).get(package, Package("not known to dpkg", "", "")).state
    assert state.startswith("ii"), f"{package} is not installed ({state}); install it"


def test_no_removed_packages_config_left(facts) -> None:
    """No package is removed but not purged ("rc"): its configuration stays behind, unowned by any
    installed package, and comes back into force if anything reinstalls it.  A kernel apt removed
    as no longer needed (autoremove after an upgrade, on a running instance) is left so by design
    and carries no configuration."""
    left = sorted(name for name, package in dpkg_packages(facts).items()
                  if package.state == "rc" and not KERNEL_IMAGE.fullmatch(name))
    assert not left, f"packages removed but not purged: {left[:10]}; `dpkg --purge` them in the image"


def test_no_broken_dependencies(facts) -> None:
    """Every installed package has its dependencies (`apt-get check`): a build that forced a
    removal leaves packages apt refuses to upgrade until someone repairs them."""
    out = facts["apt_check"]
    said = [line for line in (out.stdout + out.stderr).splitlines()
            if line.strip() and not line.startswith(("Reading", "Building"))]
    assert out.rc == 0, f"apt-get check fails: {'; '.join(said[:4]) or out.why()}; `apt-get -f install`"


#: installed kernel packages: the flavoured images, not the meta packages that pull them in
KERNEL_IMAGE = re.compile(r"linux-image-(\d+\.\d+\S*)")


def test_no_kernel_older_than_the_booted_one(facts) -> None:
    """No kernel older than the booted one is installed: one left from the build is a kernel
    without its security updates, one GRUB entry away.  A newer one (an upgrade waiting for the
    reboot) is the way forward and passes."""
    booted = facts["kernel_release"].stdout.strip()
    assert booted, f"cannot read the booted kernel's release: {facts['kernel_release'].why()}"
    versions = _kernel_versions(facts)
    mine = versions.get(booted) or versions.get(f"{booted}-unsigned")
    if mine is None:
        pytest.skip(f"not applicable: the booted kernel {booted} is not a Debian package here")
    older = sorted(k for k, version in versions.items()
                   if not k.startswith(booted) and debversion.compare(version, mine) < 0)
    assert not older, (f"kernels older than the booted {booted} ({mine}) installed: {older}; "
                       "purge them in the image")


def _kernel_versions(facts) -> dict[str, str]:
    """Installed (held too) kernel image packages: release -> package version."""
    return {m[1]: package.version for name, package in dpkg_packages(facts).items()
            if package.state[1:2] == "i" and (m := KERNEL_IMAGE.fullmatch(name))
            and not m[1].endswith("-dbg")}

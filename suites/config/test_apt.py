"""apt: the release with -updates and -security, nothing left from the build, dpkg healthy."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

import pytest

from debian_cloud_tests.facts import Probe
from debian_cloud_tests.probes import DPKG_PACKAGES, OS_RELEASE, dump_files, dumped_files

#: every apt source file (one-line and deb822 formats), see probes.dump_files
APT_SOURCES = Probe("apt_sources", dump_files("/etc/apt/sources.list /etc/apt/sources.list.d/*.list "
                                              "/etc/apt/sources.list.d/*.sources /etc/apt/mirrors/*.list"))

#: apt's whole configuration, once: the proxy, periodic, origin and security checks all read it
APT_CONFIG = Probe("apt_config", "apt-config dump")

PROBES = [
    OS_RELEASE,
    APT_SOURCES,
    APT_CONFIG,
    # an empty or missing database audits clean: say so instead
    # as root: dpkg reads its lock file (0640 once any package operation made it) even to audit
    Probe("dpkg_audit", "test -s /var/lib/dpkg/status || { echo 'the dpkg database "
          "(/var/lib/dpkg/status) is missing or empty' >&2; exit 2; }; dpkg --audit", root=True),
    DPKG_PACKAGES,
    # apt-get update of every source (InRelease) and of the -security indexes, in one run for
    # both apt checks: see apt-update.sh
    Probe("apt_update", Path(__file__).with_name("apt-update.sh").read_text(), root=True, slow=True),
]
POCKETS = ["release", "updates", "security"]
#: where unattended-upgrades reads the origins it upgrades from
UU_ORIGINS = ("Unattended-Upgrade::Origins-Pattern", "Unattended-Upgrade::Allowed-Origins")
#: a proxy setting (Acquire::http::Proxy, Acquire::https::Proxy "…", per-host ones)…
PROXY = re.compile(r"::(proxy|http::proxy|https::proxy|ftp::proxy)", re.I)
#: …that is set to nothing or to "no proxy"
NO_PROXY = re.compile(r'"(DIRECT|false)?";$', re.I)
#: apt's words for "could not reach the mirror": the environment, not the image
UNREACHABLE = re.compile(r"Temporary failure resolving|Could not resolve|Could not connect|"
                         r"Connection timed out|Connection failed|Network is unreachable|"
                         r"No route to host|Unable to connect|Cannot initiate the connection")

#: a line of `apt list --upgradable`
UPGRADABLE = re.compile(r"(?P<name>[^/\s]+)/\S+ (?P<candidate>\S+) \S+ "
                        r"\[upgradable from: (?P<installed>\S+)\]")

#: apt's words for a certificate it does not trust: OpenSSL's (apt 3, trixie on), GnuTLS's before
UNTRUSTED_CERTIFICATE = re.compile(r"certificate verify failed|Certificate verification failed")


def _codename(facts) -> str:
    m = re.search(r"^VERSION_CODENAME=\"?(\w+)", facts["os_release"].stdout, re.M)
    if not m:
        pytest.fail("/etc/os-release has no VERSION_CODENAME", pytrace=False)
    return m.group(1)


def _suites(facts) -> set[tuple[str, str]]:
    """(uri, suite) pairs of every enabled source, one-line and deb822 formats."""
    files = [body for path, body in dumped_files(facts["apt_sources"].stdout)
             if not path.startswith("/etc/apt/mirrors/")]
    pairs: set[tuple[str, str]] = set()
    for line in "\n".join(files).splitlines():
        m = re.match(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
        if m:
            pairs.add((m.group(1), m.group(2)))
    for stanza in (s for body in files for s in re.split(r"\n\s*\n", body)):
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


@pytest.mark.applies(release="trixie+")
def test_apt_sources_deb822(facts) -> None:
    """apt's sources are in the deb822 format (*.sources): apt 3 deprecates one-line entries."""
    one_line = []
    for path, body in dumped_files(facts["apt_sources"].stdout):
        listed = path.endswith(".list") and not path.startswith("/etc/apt/mirrors/")
        if listed and re.search(r"^\s*deb(-src)?\s", body, re.M):
            one_line.append(path)
    assert not one_line, (f"one-line apt sources in {', '.join(one_line)}: Debian's images keep them "
                          "in /etc/apt/sources.list.d/debian.sources; convert with "
                          "`apt modernize-sources`")


def apt_config(facts) -> list[str]:
    """`apt-config dump` as lines; a failed dump fails the check that reads it."""
    out = facts["apt_config"]
    if not out.ok:
        pytest.fail(f"apt-config dump failed: {out.why()}", pytrace=False)
    return out.lines()


class Package(NamedTuple):
    state: str  # dpkg's abbreviation, such as "ii"
    want: str  # the selection, such as "install" or "hold"
    version: str


def dpkg_packages(facts) -> dict[str, Package]:
    """Package name -> its state, selection and version, from dpkg."""
    out = facts["dpkg_packages"]
    if not out.ok:
        pytest.fail(f"dpkg-query failed: {out.why()}", pytrace=False)
    packages = {fields[2]: Package(fields[0], fields[1], fields[3] if len(fields) > 3 else "")
                for line in out.lines() if len(fields := line.split()) >= 3}
    if not packages:
        pytest.fail("dpkg knows no package at all: its database (/var/lib/dpkg) is missing or "
                    "unreadable", pytrace=False)
    return packages


def test_no_build_proxy_left(facts) -> None:
    """No apt proxy from the build host is configured."""
    found = [line for line in apt_config(facts) if PROXY.search(line) and not NO_PROXY.search(line)]
    assert not found, f"apt proxy left from the build: {found}; remove it from /etc/apt/apt.conf.d"


def _source_uris(facts) -> list[str]:
    """Every URI apt fetches from: the sources', and those of the mirror lists they name."""
    uris = [uri for uri, _ in _suites(facts)]
    for path, body in dumped_files(facts["apt_sources"].stdout):
        if path.startswith("/etc/apt/mirrors/"):
            uris += [line.split()[0] for line in body.splitlines()
                     if line.strip() and not line.lstrip().startswith("#")]
    return uris


def _build_only(uri: str) -> str | None:
    """Why *uri* can only work where the image was built, or None for a public mirror."""
    scheme = uri.split(":", 1)[0].lower()
    if scheme.startswith("mirror"):
        return None  # its list's entries are judged one by one
    if scheme in ("file", "copy", "cdrom"):
        return "a path on the build machine"
    host = (urlsplit(uri).hostname or "").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host == "localhost" or host.endswith(".localhost"):
            return "the instance itself (a cache that ran on the build host?)"
        return None if "." in host else "a name only the build network knows"
    if address.is_loopback or address.is_private or address.is_link_local:
        return "an address of the build network"
    return None


def test_no_build_mirror_left(facts) -> None:
    """apt's sources name public mirrors: no cache, path or private address of the build host."""
    found = [f"{uri} ({why})" for uri in _source_uris(facts) if (why := _build_only(uri))]
    assert not found, (f"apt sources that only work at the build: {', '.join(found)}; point them "
                       "at deb.debian.org (or the cloud's public Debian mirror)")


def _apt_update(facts) -> dict[str, tuple[int, list[str]]]:
    """apt-update.sh's steps, all of them or a failed check."""
    out = facts["apt_update"]
    steps = _steps(out.stdout)
    if set(steps) != {"sources", "update", "upgradable"}:
        pytest.fail(f"cannot run apt-get update: {out.why()}", pytrace=False)
    return steps


@pytest.mark.late
def test_apt_update_works(facts) -> None:
    """`apt-get update` reaches every source and verifies its signed Release (InRelease) file:
    no mistyped suite or mirror, no missing key, no malformed source."""
    rc, lines = _apt_update(facts)["update"]
    if rc == 124:
        pytest.skip("not applicable: apt-get update did not finish in 45 s here (slow or no "
                    "network); run where the guest reaches its mirrors to test it")
    reasons = [r for found in apt_update_failures(lines).values() for r in found]
    if reason := unreachable(reasons):
        pytest.skip(f"not applicable: the guest cannot reach its mirrors from here ({reason}); "
                    "run where it has network to test apt-get update")
    assert rc == 0 and not reasons, (
        "apt-get update failed: " + "; ".join(dict.fromkeys(reasons or [f"exit status {rc}"]))[:800]
        + ": " + apt_failure_remedy(reasons))


def apt_update_failures(lines: list[str]) -> dict[str, list[str]]:
    """What went wrong in `apt-get update`'s output, by what it was about: "Err:N WHAT" heads a
    failed fetch and its reason follows, indented; W:/E: lines say the rest (but for the summary
    of them), each about itself.  A fetch that failed and then came ("Get:"/"Hit:" of the same
    WHAT, the next compression of an index) is no failure, nor is one apt ignored ("Ign:")."""
    failed: dict[str, list[str]] = {}
    reasons: list[str] | None = None
    for line in lines:
        if line.startswith("  "):
            if reasons is not None:
                reasons.append(line.strip())
            continue
        head, _, what = line.partition(" ")
        what = re.sub(r" \[[^]]*\]$", "", what)
        reasons = failed.setdefault(what, []) if head.startswith("Err:") else None
        if head.startswith(("Get:", "Hit:")):
            failed.pop(what, None)
        elif line.startswith(("E:", "W:")) and "Some index files failed" not in line:
            failed[line.strip()] = [line.strip()]
    return {what: found for what, found in failed.items() if found}


def unreachable(reasons: list[str]) -> str | None:
    """apt's words for an unreachable mirror, when those are all it said: the environment, not
    the image."""
    found = [m.group(0) for r in reasons if (m := UNREACHABLE.search(r))]
    return found[0] if found and len(found) == len(reasons) else None


def _steps(text: str) -> dict[str, tuple[int, list[str]]]:
    """apt-update.sh's steps: each "## STEP N" line closes the lines before it."""
    steps, lines = {}, []
    for line in text.splitlines():
        if m := re.fullmatch(r"## (\w+) (\d+)", line):
            steps[m.group(1)] = int(m.group(2)), lines
            lines = []
        elif line.strip():
            lines.append(line)
    return steps


@pytest.mark.late
def test_no_pending_security_updates(facts) -> None:
    """No installed package has a newer version in the release's -security suite: the image was
    built from the archive's current security updates, as apt on the instance judges them (the
    image's own sources, keys and pins)."""
    steps = _apt_update(facts)
    if not steps["sources"][0]:
        pytest.skip("not applicable: the image has no -security source to update from (see "
                    "config.apt_source[security])")
    rc, lines = steps["update"]
    if rc == 124:
        pytest.skip("not applicable: fetching the -security index did not finish in 45 s here")
    # the -security sources' own failures: another source's are config.apt_update_works's
    reasons = [r for what, found in apt_update_failures(lines).items() if "-security" in what
               for r in found]
    if reason := unreachable(reasons):
        pytest.skip(f"not applicable: the guest cannot reach its -security mirror from here "
                    f"({reason}); run where it has network to test it")
    # apt reads every source before it fetches any: one it cannot read stops them all
    fetched = any(line.startswith(("Get:", "Hit:")) and "-security" in line for line in lines)
    if reasons or (rc != 0 and not fetched):
        said = reasons or [r for found in apt_update_failures(lines).values() for r in found]
        pytest.fail("cannot fetch the -security index: "
                    + "; ".join(dict.fromkeys(said or [f"exit status {rc}"]))[:600]
                    + " (see config.apt_update_works)", pytrace=False)
    rc, lines = steps["upgradable"]
    # "NAME/SUITE CANDIDATE ARCH [upgradable from: INSTALLED]"
    upgradable = [m for ln in lines if (m := UPGRADABLE.fullmatch(ln))]
    if rc != 0 or len(upgradable) != len(lines):
        pytest.fail(f"apt cannot list the upgrades: {'; '.join(lines)[:600] or f'exit {rc}'}",
                    pytrace=False)
    pending = [f"{m['name']} {m['installed']} → {m['candidate']}" for m in upgradable]
    assert not pending, (f"{len(pending)} security update(s) not in the image: {'; '.join(pending[:10])}; "
                         "build it from the archive with -security (and rebuild when a DSA is out)")


def apt_failure_remedy(reasons: list[str]) -> str:
    """What to do about apt-get update's failures: a certificate the guest does not trust is
    most often a TLS-intercepting proxy between the runner and the mirror, not the sources."""
    if any(UNTRUSTED_CERTIFICATE.search(r) for r in reasons):
        return ("the guest does not trust the mirror's certificate: behind a TLS-intercepting "
                "proxy give it the proxy's CA with --ca-cert; else the image's ca-certificates "
                "are broken")
    return "fix the sources (suite, mirror, Signed-By key) in /etc/apt"


def test_dpkg_audit_clean(facts) -> None:
    """`dpkg --audit` finds no half-installed or unconfigured package."""
    out = facts["dpkg_audit"]
    assert out.ok and not out.stdout.strip(), (
        f"dpkg --audit:\n{(out.stdout or out.why())[:800]}\nfinish the build's package operations "
        "(dpkg --configure -a, or reinstall the packages named) before the image is made")


def test_unattended_upgrades_enabled(facts) -> None:
    """unattended-upgrades is installed, enabled by APT::Periodic, and takes security updates."""
    state = dpkg_packages(facts).get("unattended-upgrades", Package("not known to dpkg", "", "")).state
    assert state.startswith("ii"), f"unattended-upgrades is not installed ({state})"
    config = apt_config(facts)
    periodic = dict(m.groups() for line in config
                    if (m := re.match(r'APT::Periodic::(\S+) "(\S*)";$', line)))
    disabled = [k for k in ("Update-Package-Lists", "Unattended-Upgrade")
                if periodic.get(k, "0") in ("0", "", "false")]
    assert not disabled, (f"APT::Periodic {disabled} not enabled; ship "
                          "/etc/apt/apt.conf.d/20auto-upgrades")
    origins = [line for line in config if line.startswith(UU_ORIGINS)]
    assert any(re.search(r"security", line, re.I) for line in origins), (
        "unattended-upgrades has no security origin; keep Debian's 50unattended-upgrades")

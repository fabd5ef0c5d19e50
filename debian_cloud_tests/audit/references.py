"""The rule lists of the audit references, read from their Debian packages as setup.sh unpacks
them: ssg-debian's Debian 12 profiles, and lynis's tests in the categories that concern an image,
those of its Debian plugin and the findings its program reports itself."""

from __future__ import annotations

import os
import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from ..errors import MissingDependencyError

#: where setup.sh unpacks the packages (beside the venv); $DCT_AUDIT_REFERENCES overrides it
REFERENCES_ENV = "DCT_AUDIT_REFERENCES"
SSG_XCCDF = "usr/share/xml/scap/ssg/content/ssg-debian12-xccdf.xml"
LYNIS_INCLUDE = "usr/share/lynis/include"
LYNIS_PLUGIN = "etc/lynis/plugins/plugin_{}_phase1"
LYNIS_PROGRAM = "usr/sbin/lynis"

#: the profiles a Debian cloud image is held to: the standard one and ANSSI's minimal and
#: intermediary levels, in both generations of ANSSI's guide
SSG_PROFILES = ("standard", "anssi_bp28_minimal", "anssi_bp28_intermediary",
                "anssi_np_nt28_minimal", "anssi_np_nt28_average")
#: lynis's test files whose subject is the state of an image.  Left out: databases, dns,
#: kerberos, ldap, mail_messaging, php, printers_spoolers, snmp, squid, storage_nfs and
#: webservers, the servers Debian's cloud images do not install: each of their tests reports only
#: where its daemon, configuration or tool is present (a server listening is
#: config.listening_sockets_allowlisted's)
LYNIS_CATEGORIES = ("boot_services", "authentication", "shells", "file_permissions", "ssh",
                    "networking", "kernel_hardening", "logging", "scheduling", "ports_packages",
                    "crypto", "accounting", "banners", "containers", "file_integrity",
                    "filesystems", "firewalls", "hardening", "homedirs", "insecure_services",
                    "kernel", "mac_frameworks", "malware", "memory_processes", "nameservices",
                    "storage", "system_integrity", "time", "tooling", "usb", "virtualization")
#: lynis's plugins shipped in etc/lynis/plugins; their tests' scope is "plugin_<name>"
LYNIS_PLUGINS = ("debian",)
#: findings lynis's program reports itself, outside any test (scope "lynis"): id -> title
LYNIS_OWN = {"LYNIS": "lynis's own notices: its release is old or outdated, the hostname is empty",
             "GEN-0010": "The operating system release is past its end of life (software-eol.db)"}

_XCCDF = "{http://checklists.nist.gov/xccdf/1.2}"
_RULE_PREFIX = "xccdf_org.ssgproject.content_rule_"
_PROFILE_PREFIX = "xccdf_org.ssgproject.content_profile_"
_LYNIS_TEST = re.compile(r'Register\s+--test-no\s+"?([A-Z0-9]+-[0-9]+)"?.*?--description\s+"([^"]*)"')


@dataclass(frozen=True)
class Rule:
    """One rule of a reference: *scope* is the SSG profiles selecting it, or the lynis category
    (plugin_<name> for a plugin's tests, lynis for the program's own findings)."""

    source: str  # "ssg" or "lynis"
    id: str
    title: str
    scope: tuple[str, ...]


def root() -> Path:
    """Where the unpacked packages are; a one-line error when setup.sh has not put them there."""
    where = Path(os.environ.get(REFERENCES_ENV)
                 or Path(sys.prefix) / "share" / "debian-cloud-tests" / "audit-references")
    if not (where / "versions").is_file():
        raise MissingDependencyError(
            f"no audit references in {where}: run scripts/setup.sh (it unpacks ssg-debian and "
            f"lynis there), or point ${REFERENCES_ENV} at a directory holding them")
    return where


def versions(where: Path) -> dict[str, str]:
    """Package -> version of the references in *where*."""
    lines = (where / "versions").read_text().splitlines()
    return dict(line.split(maxsplit=1) for line in lines if line.strip())


def _text(element: ET.Element | None) -> str:
    return " ".join("".join(element.itertext()).split()) if element is not None else ""


def ssg_rules(where: Path) -> list[Rule]:
    """Every rule selected by one of SSG_PROFILES, in the benchmark's order."""
    benchmark = ET.parse(where / SSG_XCCDF).getroot()
    selected: dict[str, list[str]] = {}
    for profile in benchmark.iter(f"{_XCCDF}Profile"):
        name = (profile.get("id") or "").removeprefix(_PROFILE_PREFIX)
        if name not in SSG_PROFILES:
            continue
        for select in profile.iter(f"{_XCCDF}select"):
            if select.get("selected") == "true":
                selected.setdefault(select.get("idref") or "", []).append(name)
    return [Rule("ssg", rule.get("id", "").removeprefix(_RULE_PREFIX),
                 _text(rule.find(f"{_XCCDF}title")),
                 tuple(p for p in SSG_PROFILES if p in selected[rule.get("id", "")]))
            for rule in benchmark.iter(f"{_XCCDF}Rule") if rule.get("id") in selected]


def lynis_rules(where: Path) -> list[Rule]:
    """Every test lynis registers in LYNIS_CATEGORIES, then in LYNIS_PLUGINS, in their files'
    order; then the LYNIS_OWN findings its program still reports."""
    files = [(c, where / LYNIS_INCLUDE / f"tests_{c}") for c in LYNIS_CATEGORIES]
    files += [(f"plugin_{p}", where / LYNIS_PLUGIN.format(p)) for p in LYNIS_PLUGINS]
    rules = [Rule("lynis", m[1], m[2], (scope,)) for scope, path in files
             for m in _LYNIS_TEST.finditer(path.read_text(errors="replace"))]
    program = (where / LYNIS_PROGRAM).read_text(errors="replace")
    return rules + [Rule("lynis", rule_id, title, ("lynis",)) for rule_id, title in LYNIS_OWN.items()
                    if re.search(rf'Report(?:Warning|Suggestion)\s+"{rule_id}"', program)]

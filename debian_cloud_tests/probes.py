"""Probes read by more than one suite, or by the suites and the run's own JUnit properties.

Declared once, here, so one gather runs each command once for all its readers: the properties
cost the guest nothing more than the checks already do, and are read after ready like every check.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .facts import Facts, Probe

OS_RELEASE = Probe("os_release", "cat /etc/os-release")
#: every package dpkg knows, with its state, selection and version: one dpkg-query for all
DPKG_PACKAGES = Probe("dpkg_packages", "dpkg-query -W -f "
                      "'${db:Status-Abbrev} ${db:Status-Want} ${Package} ${Version}\\n'")
#: root: the owning process of every socket, which an unprivileged ss cannot see
LISTENING = Probe("listening", "ss -Htulpn", root=True)
CLOUD_INIT_STATUS = Probe("ci_status", "cat /run/cloud-init/status.json")
#: what cloud-init knows of the instance: read by the cloud-init, metadata and uniqueness suites
INSTANCE_DATA = Probe("ci_instance_data", "cat /run/cloud-init/instance-data.json")
#: what begins each line of SSHD_T that is not sshd's: a host key it loads
HOST_KEY_MARK = "#=> host key: "
#: sshd's effective configuration (read by the config suite and by cloud-init's root-login check),
#: then each host key it loads as `ssh-keygen -l` sees it, the path appended (a key file sshd is not
#: configured with is never served)
SSHD_T = Probe("sshd_T", "t=$(sshd -T -C user=nobody,host=localhost,addr=127.0.0.1) || exit; "
               "printf '%s\\n' \"$t\"; printf '%s\\n' \"$t\" | while read -r key path; do "
               "[ \"$key\" = hostkey ] && [ -e \"$path\" ] && ssh-keygen -l -f \"$path\" | "
               f"awk -v p=\"$path\" '{{print \"{HOST_KEY_MARK}\" $0, p}}'; done; true", root=True)
#: the kernel command line: read by the bvt and config suites
CMDLINE = Probe("cmdline", "cat /proc/cmdline")
#: when the machine booted (seconds since the epoch): what the run changed is newer
BTIME = Probe("btime", "awk '/^btime/ {print $2}' /proc/stat")
#: every network interface with its details (MAC, MTU, flags, promiscuity): read by the network
#: and config suites
IP_LINKS = Probe("ip_links", "ip -d -j link show")


def ip_links(facts: Facts) -> list[dict[str, Any]]:
    """The interfaces as `ip -j link` describes them ([] when it printed nothing)."""
    return list(json.loads(facts[IP_LINKS.name].stdout or "[]"))


def link_macs(facts: Facts) -> set[str]:
    """This machine's own MAC addresses, lower case."""
    return {str(link.get("address", "")).lower() for link in ip_links(facts)}


#: the line before each file a probe dumps: a mark no configuration file holds (a "## " heading
#: may: cloud-init's own apt sources.list starts with "## Note, this file is written by cloud-init")
FILE_MARK = "#=> file: "


def dump_files(paths: str) -> str:
    """The shell that prints each regular file of *paths* (shell words, globs) after a FILE_MARK
    line; a newline of its own ends each, so that a file without a last newline hides no mark."""
    return (f'for f in {paths}; do [ -f "$f" ] && {{ echo "{FILE_MARK}$f"; cat "$f"; echo; }}; '
            "done; true")


def dumped_files(text: str) -> list[tuple[str, str]]:
    """(path, content) of each file a dump_files probe printed."""
    parts = re.split(rf"^{re.escape(FILE_MARK)}(.*)\n", text, flags=re.M)
    return [(parts[i], parts[i + 1].removesuffix("\n")) for i in range(1, len(parts) - 1, 2)]


#: what the run's properties read (see artifacts.comparable_properties)
FOR_PROPERTIES = (OS_RELEASE, DPKG_PACKAGES, LISTENING, CLOUD_INIT_STATUS)


def sshd_config(facts: Facts) -> dict[str, list[str]]:
    """sshd's effective settings from SSHD_T: keyword (lower case) -> its values."""
    config: dict[str, list[str]] = {}
    for line in facts[SSHD_T.name].lines():
        if not line.startswith(HOST_KEY_MARK):
            key, _, value = line.partition(" ")
            config.setdefault(key.lower(), []).append(value.strip())
    return config


def sshd_host_keys(facts: Facts) -> list[str]:
    """`ssh-keygen -l` of each host key sshd loads, its path appended: "BITS FINGERPRINT COMMENT
    (TYPE) PATH"."""
    return [line.removeprefix(HOST_KEY_MARK) for line in facts[SSHD_T.name].lines()
            if line.startswith(HOST_KEY_MARK)]

"""Security baseline: permissions, kernel hardening sysctls, and nothing unexpected listening."""

from __future__ import annotations

import pytest

from debian_cloud_tests.facts import Probe

#: sysctl -> (comparison, value): Debian's defaults for these protections
SYSCTLS = {
    "kernel.randomize_va_space": (">=", 2),
    "fs.protected_hardlinks": (">=", 1),
    "fs.protected_symlinks": (">=", 1),
    "fs.protected_regular": (">=", 1),
    "fs.protected_fifos": (">=", 1),
    "kernel.dmesg_restrict": (">=", 1),
    "net.ipv4.tcp_syncookies": (">=", 1),
    "kernel.unprivileged_bpf_disabled": (">=", 1),
    "fs.suid_dumpable": ("==", 0),
    "net.ipv4.conf.all.accept_source_route": ("==", 0),
}
#: path -> (owner, group, maximal mode): credentials and configuration not readable or writable
#: beyond what they need
FILE_MODES = {
    "/etc/shadow": ("root", "shadow", 0o640),
    "/etc/gshadow": ("root", "shadow", 0o640),
    "/etc/passwd": ("root", "root", 0o644),
    "/etc/group": ("root", "root", 0o644),
    "/etc/ssh/sshd_config": ("root", "root", 0o644),
    "/root": ("root", "root", 0o700),
}
#: processes allowed to listen, by command name, and on which protocols
LISTEN_ALLOWED = {"sshd": {"tcp"}, "dhclient": {"udp"}, "systemd-network": {"udp"},
                  "chronyd": {"udp"}, "systemd-timesyn": {"udp"}, "systemd-resolve": {"udp", "tcp"}}

PROBES = [
    Probe("world_writable_etc", "find /etc -xdev -perm -0002 ! -type l", root=True),
    Probe("tmp_modes", "stat -c '%n %a' /tmp /var/tmp"),
    Probe("sysctls", "sysctl " + " ".join(SYSCTLS)),
    Probe("file_modes", "stat -c '%n %U %G %a' " + " ".join(FILE_MODES)),
    Probe("listening", "ss -Htulpn", root=True),
]


def test_no_world_writable_files_in_etc(facts) -> None:
    """Nothing under /etc is writable by every user."""
    out = facts["world_writable_etc"]
    assert out.ok, f"cannot search /etc: {out.why()}"
    assert not out.lines(), f"world-writable under /etc: {out.lines()[:10]}; chmod o-w"


def test_tmp_sticky(facts) -> None:
    """/tmp and /var/tmp are sticky and world-writable (1777): users cannot delete others' files."""
    modes = dict(line.split() for line in facts["tmp_modes"].lines())
    wrong = {d: m for d, m in modes.items() if m != "1777"}
    assert modes and not wrong, f"modes {wrong or 'unreadable'}; chmod 1777"


@pytest.mark.parametrize("name", sorted(SYSCTLS))
def test_sysctl_hardening(facts, name: str) -> None:
    """Kernel hardening sysctls keep Debian's protective defaults."""
    values = dict(line.replace(" ", "").split("=", 1) for line in facts["sysctls"].lines() if "=" in line)
    assert name in values, f"sysctl {name} is not readable"
    op, wanted = SYSCTLS[name]
    ok = int(values[name]) >= wanted if op == ">=" else int(values[name]) == wanted
    assert ok, f"{name} = {values[name]}, expected {op} {wanted}; remove the override in /etc/sysctl.d"


@pytest.mark.parametrize("path", sorted(FILE_MODES))
def test_file_mode(facts, path: str) -> None:
    """Credential and configuration files have their owner, group and at most their mode."""
    stats = {line.split()[0]: line.split()[1:] for line in facts["file_modes"].lines()}
    assert path in stats, f"cannot stat {path}: {facts['file_modes'].why()}"
    owner, group, mode = stats[path]
    want_owner, want_group, max_mode = FILE_MODES[path]
    extra = int(mode, 8) & ~max_mode
    assert (owner, group) == (want_owner, want_group) and not extra, (
        f"{path} is {owner}:{group} {mode}, expected {want_owner}:{want_group} at most "
        f"{max_mode:o}; chown/chmod it in the image")


def test_listening_sockets_allowlisted(facts) -> None:
    """Only sshd (and the DHCP/time/resolver clients) listen on the network."""
    out = facts["listening"]
    assert out.ok, f"ss failed: {out.why()}"
    unexpected = []
    for line in out.lines():
        fields = line.split()
        proto, local = fields[0], fields[4]
        proc = line.split('(("', 1)[1].split('"', 1)[0] if '(("' in line else "?"
        if proto not in LISTEN_ALLOWED.get(proc, set()):
            unexpected.append(f"{proc} {proto} {local}")
    assert not unexpected, f"unexpected listening sockets: {unexpected}; disable those services"

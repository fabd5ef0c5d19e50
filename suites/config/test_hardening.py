"""Security baseline: permissions, set-id programs, mount options, kernel hardening sysctls, and
nothing unexpected listening."""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime

import pytest
from cryptography import x509

from debian_cloud_tests.facts import Probe
from debian_cloud_tests.probes import CMDLINE, IP_LINKS, LISTENING, dump_files, dumped_files, ip_links
from debian_cloud_tests.spec import Arch

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
    "net.ipv6.conf.all.accept_source_route": ("==", 0),
    "net.ipv4.icmp_echo_ignore_broadcasts": ("==", 1),  # no smurf amplification
    "net.ipv4.icmp_ignore_bogus_error_responses": ("==", 1),
    "kernel.perf_event_paranoid": (">=", 2),  # Debian's kernel defaults to 3
    # a build step that turned the instance into a router, or made 127/8 reachable from outside
    "net.ipv4.ip_forward": ("==", 0),
    "net.ipv4.conf.all.accept_local": ("==", 0),
    "net.ipv4.conf.all.route_localnet": ("==", 0),
    "net.ipv6.conf.default.accept_source_route": ("==", 0),
    # the NULL page stays unmappable (the floor per arch below)
    "vm.mmap_min_addr": (">=", 4096),
}
#: where Debian's kernel default differs per arch: never below it.  amd64 is built with 65536;
#: arm64 keeps the kernel's 4096 (its LSM floor of 32768 is not what the sysctl shows)
SYSCTL_ARCH_FLOORS = {"vm.mmap_min_addr": {Arch.AMD64: 65536, Arch.ARM64: 4096}}
#: path -> (owner, group, maximal mode): credentials and configuration not readable or writable
#: beyond what they need
FILE_MODES = {
    "/etc/shadow": ("root", "shadow", 0o640),
    "/etc/gshadow": ("root", "shadow", 0o640),
    "/etc/passwd": ("root", "root", 0o644),
    "/etc/group": ("root", "root", 0o644),
    "/etc/ssh/sshd_config": ("root", "root", 0o644),
    "/root": ("root", "root", 0o700),
    "/etc/ssh": ("root", "root", 0o755),
    "/boot/grub/grub.cfg": ("root", "root", 0o644),
    # who may become root, which shells are login shells, which sysctls apply at boot
    "/etc/sudoers": ("root", "root", 0o440),
    "/etc/sudoers.d": ("root", "root", 0o755),
    "/etc/shells": ("root", "root", 0o644),
    "/etc/sysctl.d": ("root", "root", 0o755),
    # what cron runs as root (e2fsprogs ships /etc/cron.d even without cron)
    "/etc/crontab": ("root", "root", 0o644),
    "/etc/cron.d": ("root", "root", 0o755),
}
#: paths an image may lack (GRUB's menu, on images with another boot loader; a directory nothing
#: is dropped into)
OPTIONAL_PATHS = {"/boot/grub/grub.cfg", "/etc/crontab", "/etc/cron.d", "/etc/sudoers.d",
                  "/etc/sysctl.d"}
#: set-user-id and set-group-id programs a Debian cloud image may carry (by path)
SETID_ALLOWED = frozenset(
    "/usr/bin/" + name for name in (
        "chage", "chfn", "chsh", "expiry", "gpasswd", "mount", "newgrp", "passwd", "su", "sudo",
        "umount", "ssh-agent", "crontab", "wall", "write", "bsd-write", "dotlockfile", "at",
        "fusermount", "fusermount3", "pkexec", "ntfs-3g", "mlocate", "plocate", "sg")
) | {"/usr/lib/dbus-1.0/dbus-daemon-launch-helper", "/usr/lib/openssh/ssh-keysign",
     "/usr/sbin/unix_chkpwd", "/usr/sbin/pam_extrausers_chkpwd", "/usr/lib/polkit-1/polkit-agent-helper-1",
     "/usr/libexec/polkit-agent-helper-1", "/usr/lib/eject/dmcrypt-get-device",
     "/usr/lib/x86_64-linux-gnu/utempter/utempter", "/usr/lib/aarch64-linux-gnu/utempter/utempter"}
#: systemd's DynamicUser= range: a service's state keeps these ids between its runs, unnamed
DYNAMIC_IDS = (61184, 65519)
#: mount point -> options it must carry (systemd's defaults for shared memory)
MOUNT_OPTIONS = {"/dev/shm": ("nosuid", "nodev"), "/tmp": ("nosuid", "nodev")}
#: mount points checked only where they are mounts of their own (/tmp is a tmpfs from trixie on)
OPTIONAL_MOUNTS = {"/tmp"}
#: where the system's commands live: whoever can write there runs code as everyone who calls them
COMMAND_DIRS = ("/usr/bin", "/usr/sbin", "/usr/libexec", "/usr/local/bin", "/usr/local/sbin")
#: kernel command-line words that switch off a CPU vulnerability mitigation Debian's kernel enables
MITIGATIONS_OFF = re.compile(r"^(mitigations=off|nopti|pti=off|nospectre_v[12]|spectre_v2=off|"
                             r"spectre_v2_user=off|nospec_store_bypass_disable|"
                             r"spec_store_bypass_disable=off|(mds|l1tf|tsx_async_abort|mmio_stale_data|"
                             r"retbleed|srbds|gather_data_sampling|spec_rstack_overflow|"
                             r"reg_file_data_sampling)=off|nosmap|nosmep|noibrs|noibpb)$")
#: processes allowed to listen, by command name, and on which protocols
#: who may listen beyond the loopback, and on what: sshd, the DHCP clients, the time services
#: (ss shows a process name cut to 15 characters)
LISTEN_ALLOWED = {"sshd": {"tcp"}, "dhclient": {"udp"}, "dhcpcd": {"udp"}, "systemd-network": {"udp"},
                  "chronyd": {"udp"}, "ntpd": {"udp"}, "systemd-timesyn": {"udp"},
                  "systemd-resolve": {"udp", "tcp"}}

PROBES = [
    # one walk of /etc: world-writable entries, and conffiles dpkg or ucf set aside at the build
    Probe("etc_walk", "find /etc -xdev \\( -perm -0002 ! -type l -printf 'writable %p\\n' \\) , "
          "\\( -name '*.dpkg-old' -o -name '*.dpkg-new' -o -name '*.dpkg-dist' -o -name '*.dpkg-bak' "
          "-o -name '*.ucf-old' -o -name '*.ucf-new' -o -name '*.ucf-dist' \\) -printf 'conffile %p\\n'",
          root=True),
    Probe("tmp_modes", "stat -c '%n %a' /tmp /var/tmp"),
    Probe("sysctls", "sysctl " + " ".join(SYSCTLS)),
    Probe("file_modes", "stat -c '%n %U %G %a' " + " ".join(FILE_MODES)),
    LISTENING,
    # One walk of the root file system for three checks: files no account owns ("orphan PATH"),
    # world-writable directories without the sticky bit ("open PATH") and set-id files, as real
    # paths ("/PATH": merged /usr shows one file twice).  The owner lookup (an NSS call per
    # file, 1.4 s of guest CPU for a whole walk) runs only for files not owned by root.
    Probe("fs_walk", "find / -xdev \\( \\( ! -uid 0 -nouser \\) -o \\( ! -gid 0 -nogroup \\) \\) "
          "-printf 'orphan %U:%G %p\\n' , "
          "\\( -type d -perm -0002 ! -perm -1000 -printf 'open %p\\n' \\) , "
          "\\( -type f -perm -0002 -printf 'writable %p\\n' \\) , "
          "\\( -type d -perm -0002 -uid +999 -uid -60000 -printf 'userdir %U %p\\n' \\) , "
          "\\( -type f \\( -perm -4000 -o -perm -2000 \\) -exec realpath {} + \\) | sort -u",
          root=True, slow=True),
    Probe("mount_options", "findmnt -rno TARGET,OPTIONS"),
    IP_LINKS,
    # commands, and their directories, that are not root's or that a group or everyone may change
    Probe("command_dirs", "for d in " + " ".join(COMMAND_DIRS) + "; do [ -d \"$d\" ] && "
          "find \"$d\" -xdev ! -type l \\( ! -user root -o -perm /022 \\) -printf '%u %m %p\\n'; "
          "done; true", root=True),
    CMDLINE,
    # each CA file a build or an administrator added (public certificates, read here: a file may
    # hold several, as cloud-init's ca_certs bundle does)
    Probe("local_cas", dump_files("/usr/local/share/ca-certificates/*.crt "
                                  "/usr/local/share/ca-certificates/*/*.crt")),
]


def test_no_world_writable_files_in_etc(facts) -> None:
    """Nothing under /etc is writable by every user."""
    found = _walk(facts, "etc_walk", "writable", "cannot search /etc")
    assert not found, f"world-writable under /etc: {found[:10]}; chmod o-w"


def test_no_conffile_leftovers(facts) -> None:
    """No configuration file that dpkg or ucf set aside at the build (.dpkg-dist, .ucf-old…):
    each is a conffile question the build never answered, so the image runs a configuration
    nobody chose."""
    found = _walk(facts, "etc_walk", "conffile", "cannot search /etc")
    assert not found, (f"conffiles set aside at the build: {found[:10]}; merge or remove them, "
                       "and keep the configuration the image means to ship")


def _walk(facts, probe: str, kind: str, failed: str) -> list[str]:
    """The paths a walk probe reported as *kind* ("KIND PATH" lines); a failed walk fails."""
    out = facts[probe]
    assert out.ok, f"{failed}: {out.why()}"
    return [line.split(" ", 1)[1] for line in out.lines() if line.startswith(kind + " ")]


def test_tmp_sticky(facts) -> None:
    """/tmp and /var/tmp are sticky and world-writable (1777): users cannot delete others' files."""
    modes = dict(line.split() for line in facts["tmp_modes"].lines())
    wrong = {d: m for d, m in modes.items() if m != "1777"}
    assert modes and not wrong, f"modes {wrong or 'unreadable'}; chmod 1777"


@pytest.mark.parametrize("name", sorted(SYSCTLS))
def test_sysctl_hardening(facts, machine, name: str) -> None:
    """Kernel hardening sysctls keep Debian's protective defaults."""
    values = dict(line.replace(" ", "").split("=", 1) for line in facts["sysctls"].lines() if "=" in line)
    assert name in values, f"sysctl {name} is not readable"
    op, wanted = SYSCTLS[name]
    wanted = SYSCTL_ARCH_FLOORS.get(name, {}).get(machine.facts.arch, wanted)
    if not re.fullmatch(r"-?\d+", values[name]):
        pytest.fail(f"sysctl {name} reads {values[name]!r}, not a number", pytrace=False)
    ok = int(values[name]) >= wanted if op == ">=" else int(values[name]) == wanted
    assert ok, (f"{name} = {values[name]}, expected {op} {wanted}: remove the override in "
                "/etc/sysctl.d, and keep the package that sets Debian's default installed "
                "(procps before trixie, linux-sysctl-defaults from trixie on)")


@pytest.mark.parametrize("path", sorted(FILE_MODES))
def test_file_mode(facts, path: str) -> None:
    """Credential and configuration files have their owner, group and at most their mode."""
    stats = {line.split()[0]: line.split()[1:] for line in facts["file_modes"].lines()}
    if path in OPTIONAL_PATHS and path not in stats:
        pytest.skip(f"not applicable: the image has no {path}")
    assert path in stats, f"cannot stat {path}: {facts['file_modes'].why()}"
    owner, group, mode = stats[path]
    want_owner, want_group, max_mode = FILE_MODES[path]
    extra = int(mode, 8) & ~max_mode
    assert (owner, group) == (want_owner, want_group) and not extra, (
        f"{path} is {owner}:{group} {mode}, expected {want_owner}:{want_group} at most "
        f"{max_mode:o}; chown/chmod it in the image")


@pytest.mark.late
def test_setid_programs_allowlisted(facts) -> None:
    """Only the set-id programs Debian ships for logins and mounts are set-id (each is a way up)."""
    out = facts["fs_walk"]
    assert out.ok, f"cannot search for set-id files: {out.why()}"
    setid = {line for line in out.lines() if line.startswith("/")}
    unexpected = sorted(setid - SETID_ALLOWED)
    assert not unexpected, f"unexpected set-id programs: {unexpected[:10]}; chmod u-s,g-s them"


@pytest.mark.late
def test_no_world_writable_dirs_without_sticky(facts) -> None:
    """Every world-writable directory is sticky (else anyone deletes anyone's files there)."""
    found = _walk(facts, "fs_walk", "open", "cannot search for world-writable directories")
    assert not found, f"world-writable, not sticky: {found[:10]}; chmod +t or o-w"


@pytest.mark.late
def test_no_files_without_owner(facts) -> None:
    """Every file belongs to a known user and group: a file left by a build account that does
    not exist here goes to whoever is next given that id (systemd's dynamic service ids aside)."""
    found = [f"{path} ({ids})" for entry in _walk(facts, "fs_walk", "orphan",
                                                  "cannot search for files without owner")
             for ids, path in [entry.split(" ", 1)]
             if not all(DYNAMIC_IDS[0] <= int(i) <= DYNAMIC_IDS[1] for i in ids.split(":"))]
    assert not found, f"files whose owner or group no account has: {found[:10]}; chown them"


@pytest.mark.late
def test_no_world_writable_files(facts) -> None:
    """No regular file anywhere on the root file system is writable by every user (whatever
    reads or runs it can be made to read or run anything)."""
    found = _walk(facts, "fs_walk", "writable", "cannot search for world-writable files")
    assert not found, f"world-writable files: {found[:10]}; chmod o-w"


def test_system_commands_root_owned(facts) -> None:
    """The system's commands and their directories are root's and writable by root alone."""
    out = facts["command_dirs"]
    assert out.ok, f"cannot search the command directories: {out.why()}"
    found = out.lines()
    assert not found, (f"commands another account or a group may change (owner mode path): "
                       f"{found[:10]}; chown root and chmod go-w them")


def test_cpu_mitigations_not_disabled(facts) -> None:
    """The kernel command line keeps the CPU vulnerability mitigations Debian's kernel enables
    (no mitigations=off, nopti, spectre_v2=off…): one guest could read another's memory."""
    words = facts["cmdline"].stdout.split()
    assert words, f"cannot read the kernel command line: {facts['cmdline'].why()}"
    off = [w for w in words if MITIGATIONS_OFF.match(w)]
    assert not off, f"mitigations switched off on the kernel command line: {off}; drop them from GRUB"


@pytest.mark.late
def test_world_writable_dirs_system_owned(facts) -> None:
    """Every world-writable directory belongs to root or a system account: its owner may remove
    or replace what everyone else put there, sticky bit or not."""
    found = _walk(facts, "fs_walk", "userdir", "cannot search for world-writable directories")
    assert not found, f"world-writable directories a user owns (uid path): {found[:10]}; chown root"


def test_no_promiscuous_interfaces(facts) -> None:
    """No network interface is in promiscuous mode: nothing in the image captures other
    machines' traffic."""
    out = facts["ip_links"]
    assert out.ok and out.stdout.strip(), f"cannot list the network interfaces: {out.why()}"
    # the promiscuity counter counts every taker (a packet capture too), where the PROMISC flag
    # shows only `ip link set promisc on`
    promiscuous = [link.get("ifname") for link in ip_links(facts)
                   if "PROMISC" in link.get("flags", []) or int(link.get("promiscuity") or 0) > 0]
    assert not promiscuous, (f"interfaces in promiscuous mode: {promiscuous}; stop what sets it "
                             "(`ip link set … promisc on`, a packet capture)")


def test_no_expired_local_certificates(facts) -> None:
    """No CA certificate added outside Debian's packages has expired: apt and TLS clients that
    rely on it fail, and an expired CA nobody renews is one nobody looks after."""
    out = facts["local_cas"]
    assert out.ok, f"cannot read the local CAs: {out.why()}"
    now = datetime.now(UTC)
    expired, unreadable = [], []
    for path, text in dumped_files(out.stdout):
        try:
            certs = x509.load_pem_x509_certificates(text.encode())
        except ValueError:
            unreadable.append(path)
            continue
        expired += [f"{path} ({cert.subject.rfc4514_string()}, {cert.not_valid_after_utc:%Y-%m-%d})"
                    for cert in certs if cert.not_valid_after_utc < now]
    assert not expired, f"expired CA certificates: {expired[:5]}; renew or remove them"
    assert not unreadable, f"CA files that hold no readable certificate: {unreadable[:5]}"


@pytest.mark.parametrize("target", sorted(MOUNT_OPTIONS))
def test_mount_options(facts, target: str) -> None:
    """Shared-memory and temporary mounts carry nosuid and nodev (no set-id programs or devices
    there)."""
    mounted = dict(line.split(" ", 1) for line in facts["mount_options"].lines() if " " in line)
    if target in OPTIONAL_MOUNTS and target not in mounted:
        pytest.skip(f"not applicable: {target} is not a mount of its own")
    assert target in mounted, f"{target} is not mounted"
    missing = [o for o in MOUNT_OPTIONS[target] if o not in mounted[target].split(",")]
    assert not missing, f"{target} is mounted without {missing} ({mounted[target]}); fix /etc/fstab"


def on_loopback(local: str) -> bool:
    """Whether ss's local address (`127.0.0.1:25`, `[::1]:631`, `127.0.0.53%lo:53`, `*:22`) is a
    loopback one, which nothing beyond the machine reaches."""
    host = local.rpartition(":")[0].strip("[]").partition("%")[0]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1, a v4 address on a v6 socket
    return (mapped or address).is_loopback


def test_listening_sockets_allowlisted(facts) -> None:
    """Only sshd (and the DHCP/time/resolver clients) listen on the network; what listens on the
    loopback alone is the machine's own business."""
    out = facts["listening"]
    assert out.ok, f"ss failed: {out.why()}"
    unexpected = []
    for line in out.lines():
        fields = line.split()
        proto, local = fields[0], fields[4]
        proc = line.split('(("', 1)[1].split('"', 1)[0] if '(("' in line else "?"
        if proto not in LISTEN_ALLOWED.get(proc, set()) and not on_loopback(local):
            unexpected.append(f"{proc} {proto} {local}")
    assert not unexpected, f"unexpected listening sockets: {unexpected}; disable those services"

"""Defects that can be planted into a test image, one function each.

A check is only trusted once it has been seen to fail: the framework's own tests build variant
images with some of these defects planted and assert that exactly the matching checks fail.  Each
defect is a small, realistic mistake an image build could make, applied to the root tree before
it becomes a disk.
"""

from __future__ import annotations

import inspect
import os
import re
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from .disk import DiskLayout

Defect = Callable[[Path, str, DiskLayout], None]
DEFECTS: dict[str, Defect] = {}


def defect(name: str) -> Callable[[Defect], Defect]:
    """Register a planting function under *name*."""
    def register(fn: Defect) -> Defect:
        DEFECTS[name] = fn
        return fn
    return register


def source_for(names: Sequence[str]) -> str:
    """What an image with the defects *names* planted depends on in this module: its helpers
    and those defects' own code, for the image cache key (adding or editing another defect
    leaves the key alone)."""
    helpers = Path(__file__).read_text()
    for fn in DEFECTS.values():
        helpers = helpers.replace(inspect.getsource(fn), "")
    helpers = re.sub(r"\n{3,}", "\n\n", helpers)
    return helpers + "".join(inspect.getsource(DEFECTS[name]) for name in sorted(set(names)))


def _unit(tree: Path, name: str, body: str, target: str = "multi-user.target") -> None:
    """Install and enable a system unit, as `systemctl enable` would."""
    unit = tree / "etc/systemd/system" / name
    unit.write_text(body)
    wants = tree / f"etc/systemd/system/{target}.wants"
    wants.mkdir(parents=True, exist_ok=True)
    _relink(wants / name, f"/etc/systemd/system/{name}")


def _relink(link: Path, target: str) -> None:
    """Point *link* at *target*, replacing whatever is there."""
    link.unlink(missing_ok=True)
    link.symlink_to(target)


def _mask(tree: Path, unit: str) -> None:
    """`systemctl mask`: the unit can no longer be started."""
    _relink(tree / "etc/systemd/system" / unit, "/dev/null")


def _append_cmdline(tree: Path, extra: str) -> None:
    """Add kernel arguments to the boot entry (several defects may each add theirs)."""
    _edit(tree / "boot/grub/grub.cfg", r"^(linux .*)$", rf"\1 {extra}")


def _edit(path: Path, pattern: str, repl: str) -> None:
    text = path.read_text()
    new, count = re.subn(pattern, repl, text, flags=re.M)
    if not count:
        raise ValueError(f"defect could not be planted: {pattern!r} not in {path}")
    path.write_text(new)


@defect("failed-unit")
def failed_unit(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A service that fails at every boot."""
    _unit(tree, "broken-at-boot.service",
          "[Unit]\nDescription=A service that always fails\n\n[Service]\nType=oneshot\n"
          "ExecStart=/bin/false\n\n[Install]\nWantedBy=multi-user.target\n")


@defect("console-segfault")
def console_segfault(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A program that segfaults at boot (its unit ignores the failure, so only the console shows it)."""
    _unit(tree, "segfault-at-boot.service",
          "[Unit]\nDescription=A program that crashes\n\n[Service]\nType=oneshot\n"
          "ExecStart=-/usr/bin/python3 -c 'import ctypes; ctypes.string_at(0)'\n\n"
          "[Install]\nWantedBy=multi-user.target\n")


@defect("no-growroot")
def no_growroot(tree: Path, arch: str, layout: DiskLayout) -> None:
    """cloud-init told not to grow the root partition and file system."""
    (tree / "etc/cloud/cloud.cfg.d/99-no-growroot.cfg").write_text(
        "growpart:\n  mode: 'off'\nresize_rootfs: false\n")
    _edit(tree / "etc/fstab", r",x-systemd\.growfs", "")


@defect("sudo-password")
def sudo_password(tree: Path, arch: str, layout: DiskLayout) -> None:
    """The default user's sudo rule asks for a password (which the account does not have)."""
    _edit(tree / "etc/cloud/cloud.cfg", r"NOPASSWD:ALL", "ALL")


@defect("sudo-warns")
def sudo_warns(tree: Path, arch: str, layout: DiskLayout) -> None:
    """/etc/hosts is not managed, so the instance's hostname does not resolve and sudo warns."""
    cfg = tree / "etc/cloud/cloud.cfg.d/01_debian_cloud.cfg"
    _edit(cfg, r"^manage_etc_hosts: true$", "manage_etc_hosts: false")


@defect("no-serial-console")
def no_serial_console(tree: Path, arch: str, layout: DiskLayout) -> None:
    """The kernel's console is the screen only: nothing reaches the serial port after boot."""
    from .rootfs import write_grub_cfg

    write_grub_cfg(tree, arch, layout, "console=tty0")
    _edit(tree / "etc/default/grub.d/10_cloud.cfg", r'^GRUB_CMDLINE_LINUX_DEFAULT=.*$',
          'GRUB_CMDLINE_LINUX_DEFAULT="console=tty0"')


@defect("ssh-login-broken")
def ssh_login_broken(tree: Path, arch: str, layout: DiskLayout) -> None:
    """sshd looks for authorised keys where cloud-init does not put them."""
    (tree / "etc/ssh/sshd_config.d/20-keys.conf").write_text(
        "AuthorizedKeysFile /etc/ssh/authorized_keys/%u\n")


@defect("sshd-masked")
def sshd_masked(tree: Path, arch: str, layout: DiskLayout) -> None:
    """sshd never starts (masked), although cloud-init still announces host keys."""
    for name in ("ssh.service", "sshd.service"):
        _mask(tree, name)


def _cloud_cfg(tree: Path, name: str, text: str) -> None:
    (tree / "etc/cloud/cloud.cfg.d" / name).write_text(text)


# --- Debian policy (config suite) --------------------------------------------------------------

@defect("no-apt-sources")
def no_apt_sources(tree: Path, arch: str, layout: DiskLayout) -> None:
    """The image ships without apt sources."""
    (tree / "etc/apt/sources.list.d/debian.sources").unlink()


@defect("one-line-sources")
def one_line_sources(tree: Path, arch: str, layout: DiskLayout) -> None:
    """The same apt sources, in the one-line format apt 3 (trixie) deprecates."""
    fields = dict(line.split("=", 1) for line in (tree / "etc/os-release").read_text().splitlines()
                  if "=" in line)
    release = fields.get("VERSION_CODENAME", "").strip('"')
    (tree / "etc/apt/sources.list.d/debian.sources").unlink()
    (tree / "etc/apt/sources.list").write_text(
        f"deb https://deb.debian.org/debian {release} main\n"
        f"deb https://deb.debian.org/debian {release}-updates main\n"
        f"deb https://deb.debian.org/debian-security {release}-security main\n")


@defect("apt-build-mirror")
def apt_build_mirror(tree: Path, arch: str, layout: DiskLayout) -> None:
    """The build host's package cache is left as a source (apt-cacher-ng on its localhost)."""
    (tree / "etc/apt/sources.list.d/build-cache.list").write_text(
        "deb http://localhost:3142/deb.debian.org/debian bookworm main\n")


@defect("apt-build-proxy")
def apt_build_proxy(tree: Path, arch: str, layout: DiskLayout) -> None:
    """The build host's apt proxy is left configured."""
    (tree / "etc/apt/apt.conf.d/01proxy").write_text('Acquire::http::Proxy "http://192.0.2.10:3142";\n')


@defect("dpkg-half-configured")
def dpkg_half_configured(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A package left half-configured by an interrupted build."""
    _edit(tree / "var/lib/dpkg/status", r"(Package: less\n(?:.+\n)*?Status: install ok) installed",
          r"\1 half-configured")


@defect("uu-disabled")
def uu_disabled(tree: Path, arch: str, layout: DiskLayout) -> None:
    """unattended-upgrades installed but never run (no APT::Periodic settings)."""
    (tree / "etc/apt/apt.conf.d/20auto-upgrades").unlink()


@defect("timesync-masked")
def timesync_masked(tree: Path, arch: str, layout: DiskLayout) -> None:
    _mask(tree, "systemd-timesyncd.service")


@defect("no-locale")
def no_locale(tree: Path, arch: str, layout: DiskLayout) -> None:
    (tree / "etc/default/locale").write_text("# no locale configured\n")


@defect("timezone-not-utc")
def timezone_not_utc(tree: Path, arch: str, layout: DiskLayout) -> None:
    _relink(tree / "etc/localtime", "/usr/share/zoneinfo/Europe/Paris")


@defect("root-password")
def root_password(tree: Path, arch: str, layout: DiskLayout) -> None:
    """root keeps a password hash set at build time."""
    _edit(tree / "etc/shadow", r"^root:[^:]*:",
          "root:$6$dct$0LfTNV2UbkfCcmJ0fB1PzAfG4ZmxLrW8B9nLwXBqSMJ4kxkP4Rjl8pm2yLVjL4u8tpp8CFd/T2vUuy4Y/kY2R.:")


@defect("empty-password-user")
def empty_password_user(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A build account with an empty password field."""
    with (tree / "etc/passwd").open("a") as fh:
        fh.write("builder:x:1500:1500:build account:/nonexistent:/bin/sh\n")
    with (tree / "etc/shadow").open("a") as fh:
        fh.write("builder::19000:0:99999:7:::\n")
    with (tree / "etc/group").open("a") as fh:
        fh.write("builder:x:1500:\n")


@defect("sshd-insecure")
def sshd_insecure(tree: Path, arch: str, layout: DiskLayout) -> None:
    """sshd allows passwords, empty passwords and root password logins, tunnels, GSSAPI, reverse
    DNS on every login, endless guessing, a long grace time and broken algorithms."""
    (tree / "etc/ssh/sshd_config.d/05-insecure.conf").write_text(
        "PasswordAuthentication yes\nKbdInteractiveAuthentication yes\nPermitEmptyPasswords yes\n"
        "PermitRootLogin yes\nHostbasedAuthentication yes\nIgnoreRhosts no\n"
        "PermitUserEnvironment yes\nStrictModes no\nUseDNS yes\nPermitTunnel yes\n"
        "GSSAPIAuthentication yes\nMaxAuthTries 50\nLoginGraceTime 600\n"
        # broken algorithms put back for old clients
        "Ciphers +aes128-cbc\nMACs +hmac-md5\nKexAlgorithms +diffie-hellman-group1-sha1\n"
        "HostKeyAlgorithms +ssh-rsa\nPubkeyAcceptedAlgorithms +ssh-rsa\n")
    # Keys disabled for generic users only: the default user still logs in with its key.
    (tree / "etc/ssh/sshd_config.d/99-match.conf").write_text(
        "Match User nobody\n    PubkeyAuthentication no\n")


@defect("dsa-host-key")
def dsa_host_key(tree: Path, arch: str, layout: DiskLayout) -> None:
    """sshd is configured with a DSA host key, which cloud-init makes at first boot."""
    _cloud_cfg(tree, "99-dsa.cfg", "ssh_genkeytypes: [rsa, dsa, ecdsa, ed25519]\n")
    (tree / "etc/ssh/sshd_config.d/10-dsa.conf").write_text("".join(
        f"HostKey /etc/ssh/ssh_host_{kind}_key\n" for kind in ("rsa", "ecdsa", "ed25519", "dsa")))


@defect("cloud-init-default-key-types")
def cloud_init_default_key_types(tree: Path, arch: str, layout: DiskLayout) -> None:
    """Not a defect: ssh_genkeytypes left at cloud-init's default, as Debian's official bookworm
    images leave it, so bookworm's cloud-init makes a DSA key file that sshd never loads.  Planted
    beside defects as a false-alarm control for the DSA check."""
    _edit(tree / "etc/cloud/cloud.cfg.d/01_debian_cloud.cfg", r"^ssh_genkeytypes: .*\n", "")


@defect("baked-authorized-keys")
def baked_authorized_keys(tree: Path, arch: str, layout: DiskLayout) -> None:
    ssh_dir = tree / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBuildHostKeyLeftBehindxxxxxxxxxxxxxxxxxxx builder@build\n")


@defect("shell-history")
def shell_history(tree: Path, arch: str, layout: DiskLayout) -> None:
    (tree / "root/.bash_history").write_text("apt-get install -y vim\nexport TOKEN=secret\n")


@defect("baked-machine-id")
def baked_machine_id(tree: Path, arch: str, layout: DiskLayout) -> None:
    (tree / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")


@defect("world-writable-etc")
def world_writable_etc(tree: Path, arch: str, layout: DiskLayout) -> None:
    conf = tree / "etc/build-settings.conf"
    conf.write_text("mirror=local\n")
    conf.chmod(0o666)


@defect("tmp-not-sticky")
def tmp_not_sticky(tree: Path, arch: str, layout: DiskLayout) -> None:
    (tree / "etc/tmpfiles.d/tmp.conf").write_text("d /tmp 0777 root root -\nd /var/tmp 0777 root root -\n")


@defect("weak-sysctls")
def weak_sysctls(tree: Path, arch: str, layout: DiskLayout) -> None:
    (tree / "etc/sysctl.d/zz-performance.conf").write_text(
        "kernel.randomize_va_space = 0\nfs.protected_hardlinks = 0\nfs.protected_symlinks = 0\n"
        "fs.protected_regular = 0\nfs.protected_fifos = 0\nkernel.dmesg_restrict = 0\n"
        "net.ipv4.tcp_syncookies = 0\nkernel.unprivileged_bpf_disabled = 0\nfs.suid_dumpable = 2\n"
        "net.ipv4.conf.all.accept_source_route = 1\nkernel.perf_event_paranoid = 1\n"
        "net.ipv4.icmp_echo_ignore_broadcasts = 0\nnet.ipv6.conf.all.accept_source_route = 1\n"
        "net.ipv4.icmp_ignore_bogus_error_responses = 0\n"
        "net.ipv4.ip_forward = 1\nnet.ipv4.conf.all.accept_local = 1\n"
        "net.ipv4.conf.all.route_localnet = 1\nnet.ipv6.conf.default.accept_source_route = 1\n"
        "vm.mmap_min_addr = 4096\n")


@defect("extra-listener")
def extra_listener(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A debugging web server left enabled."""
    _unit(tree, "debug-http.service",
          "[Unit]\nDescription=Debug HTTP server\n\n[Service]\n"
          "ExecStart=/usr/bin/python3 -m http.server 8080 --directory /var/empty\n\n"
          "[Install]\nWantedBy=multi-user.target\n")
    (tree / "var/empty").mkdir(exist_ok=True)


@defect("stale-cloud-init-state")
def stale_cloud_init_state(tree: Path, arch: str, layout: DiskLayout) -> None:
    """The build machine's cloud-init instance directory is left in the image."""
    inst = tree / "var/lib/cloud/instances/i-0build0host0000"
    inst.mkdir(parents=True)
    (inst / "datasource").write_text("DataSourceEc2Local: DataSourceEc2Local\n")


@defect("baked-nocloud-seed")
def baked_nocloud_seed(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A NoCloud seed from the build left in the image: its instance-id outranks the platform's,
    so every instance of the image gets the same one."""
    seed = tree / "var/lib/cloud/seed/nocloud"
    seed.mkdir(parents=True, exist_ok=True)
    (seed / "meta-data").write_text("instance-id: iid-baked-into-image\n")
    (seed / "user-data").write_text("#cloud-config\n{}\n")


@defect("host-keys-baked")
def host_keys_baked(tree: Path, arch: str, layout: DiskLayout) -> None:
    """Host keys generated at build time and kept: every instance shares them."""
    import subprocess

    for kind in ("rsa", "ecdsa", "ed25519"):
        subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "root@build",
                        "-f", str(tree / f"etc/ssh/ssh_host_{kind}_key")], check=True)
    _cloud_cfg(tree, "99-keep-keys.cfg", "ssh_deletekeys: false\n")


@defect("host-key-readable")
def host_key_readable(tree: Path, arch: str, layout: DiskLayout) -> None:
    """The baked RSA host key readable by every user (plant after host-keys-baked).  sshd skips
    that key and serves the others, so logins still work."""
    key = tree / "etc/ssh/ssh_host_rsa_key"
    if not key.exists():
        raise ValueError("host-key-readable needs host-keys-baked planted first")
    key.chmod(0o644)
    (tree / "etc/ssh/ssh_host_rsa_key.pub").chmod(0o664)


@defect("private-key-baked")
def private_key_baked(tree: Path, arch: str, layout: DiskLayout) -> None:
    """The build's deploy key left in root's .ssh, under a name no one would guess."""
    ssh = tree / "root/.ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "deploy@build",
                    "-f", str(ssh / "deploy")], check=True)


@defect("swap-file")
def swap_file(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A 16 MiB swap file in the image, switched on by fstab at every boot."""
    swap = tree / "swapfile"
    with swap.open("wb") as fh:
        fh.truncate(16 * 2**20)
    swap.chmod(0o600)
    subprocess.run(["mkswap", "-q", str(swap)], check=True)
    _append(tree / "etc/fstab", "/swapfile none swap sw 0 0\n")


@defect("core-dumps-left")
def core_dumps_left(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A crash report and a systemd core dump from a build step that crashed."""
    for rel, data in (("var/crash/_usr_bin_build-helper.0.crash", b"ProblemType: Crash\n"),
                      ("var/lib/systemd/coredump/core.build-helper.0.1.zst", b"\x28\xb5\x2f\xfd")):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(data)


# --- boot, network, cloud-init, metadata ---------------------------------------------------------

@defect("static-network")
def static_network(tree: Path, arch: str, layout: DiskLayout) -> None:
    """The build host's static network configuration, no gateway, odd MTU; cloud-init's disabled."""
    _cloud_cfg(tree, "99-no-network.cfg", "network: {config: disabled}\n")
    _append_cmdline(tree, "net.ifnames=0")  # the build host's config names eth0
    (tree / "etc/network/interfaces.d/build-host").write_text(
        "auto eth0\niface eth0 inet static\n    address 10.0.2.15/24\n    mtu 1400\n")


@defect("ordering-cycle")
def ordering_cycle(tree: Path, arch: str, layout: DiskLayout) -> None:
    for me, other in (("cycle-a", "cycle-b"), ("cycle-b", "cycle-a")):
        _unit(tree, f"{me}.service",
              f"[Unit]\nDescription=Ordering cycle {me}\nAfter={other}.service\n"
              f"Requires={other}.service\n\n[Service]\nType=oneshot\nExecStart=/bin/true\n\n"
              "[Install]\nWantedBy=multi-user.target\n")


@defect("failed-mount")
def failed_mount(tree: Path, arch: str, layout: DiskLayout) -> None:
    with (tree / "etc/fstab").open("a") as fh:
        fh.write("tmpfs /srv/scratch tmpfs size=64M,no-such-option,nofail 0 0\n")
    (tree / "srv/scratch").mkdir(parents=True, exist_ok=True)


@defect("cloud-init-error")
def cloud_init_error(tree: Path, arch: str, layout: DiskLayout) -> None:
    _cloud_cfg(tree, "99-bootcmd.cfg", "bootcmd:\n  - [sh, -c, 'echo failing bootcmd; exit 3']\n")


@defect("schema-invalid")
def schema_invalid(tree: Path, arch: str, layout: DiskLayout) -> None:
    _cloud_cfg(tree, "99-invalid.cfg", "apk_repos: 42\n")


@defect("hostname-preserved")
def hostname_preserved(tree: Path, arch: str, layout: DiskLayout) -> None:
    (tree / "etc/hostname").write_text("build-host\n")
    _cloud_cfg(tree, "99-hostname.cfg", "preserve_hostname: true\n")


@defect("cmdline-limits")
def cmdline_limits(tree: Path, arch: str, layout: DiskLayout) -> None:
    _append_cmdline(tree, "maxcpus=1 mem=640M mitigations=off")


@defect("write-files-dropped")
def write_files_dropped(tree: Path, arch: str, layout: DiskLayout) -> None:
    _edit(tree / "etc/cloud/cloud.cfg", r"^\s*- write[-_]files\s*\n", "")


@defect("keys-not-on-console")
def keys_not_on_console(tree: Path, arch: str, layout: DiskLayout) -> None:
    _cloud_cfg(tree, "99-quiet-keys.cfg", "ssh:\n  emit_keys_to_console: false\nno_ssh_fingerprints: true\n")


# --- accounts, set-id, packaging (config suite, second variant) -------------------------------

def _append(path: Path, text: str) -> None:
    with path.open("a") as fh:
        fh.write(text)


def _purge(tree: Path, *packages: str) -> None:
    """`dpkg --purge` inside the tree, as a careless build's clean-up would."""
    subprocess.run(["chroot", str(tree), "dpkg", "--purge", "--force-depends", *packages],
                   check=True, capture_output=True)


def _install_package(tree: Path, name: str, files: dict[str, str], conffiles: Sequence[str] = (),
                     remove: bool = False) -> None:
    """Build a small package holding *files* (path under / -> content) and install it with the
    tree's own dpkg; with *remove*, then remove it (not purge), as a build's clean-up might."""
    import tempfile

    with tempfile.TemporaryDirectory(dir=tree / "tmp") as work:
        root = Path(work) / "pkg"
        (root / "DEBIAN").mkdir(parents=True)
        for rel, content in files.items():
            (root / rel.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            (root / rel.lstrip("/")).write_text(content)
        (root / "DEBIAN/control").write_text(
            f"Package: {name}\nVersion: 1.0\nArchitecture: all\nMaintainer: build <build@localhost>\n"
            f"Description: left by an image build\n")
        if conffiles:
            (root / "DEBIAN/conffiles").write_text("".join(f"{c}\n" for c in conffiles))
        subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(root), f"{work}/{name}.deb"],
                       check=True, capture_output=True)
        inside = "/" + str(Path(work).relative_to(tree))
        subprocess.run(["chroot", str(tree), "dpkg", "-i", f"{inside}/{name}.deb"], check=True,
                       capture_output=True)
    if remove:
        subprocess.run(["chroot", str(tree), "dpkg", "--remove", name], check=True, capture_output=True)


@defect("second-root")
def second_root(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A locked maintenance account with UID 0: root under another name."""
    _append(tree / "etc/passwd", "toor:x:0:0:maintenance:/root:/bin/sh\n")
    _append(tree / "etc/shadow", "toor:!:19000:0:99999:7:::\n")


@defect("duplicate-uid")
def duplicate_uid(tree: Path, arch: str, layout: DiskLayout) -> None:
    """Two service accounts created with the same UID."""
    _append(tree / "etc/passwd", "svc-a:x:1610:1610::/nonexistent:/usr/sbin/nologin\n"
                                 "svc-b:x:1610:1610::/nonexistent:/usr/sbin/nologin\n")
    _append(tree / "etc/shadow", "svc-a:!:19000::::::\nsvc-b:!:19000::::::\n")
    _append(tree / "etc/group", "svc:x:1610:\n")
    _append(tree / "etc/gshadow", "svc:!::\n")


@defect("passwd-without-shadow")
def passwd_without_shadow(tree: Path, arch: str, layout: DiskLayout) -> None:
    """An account added to /etc/passwd by hand, never to /etc/shadow."""
    _append(tree / "etc/passwd", "ghost:x:1620:1620::/nonexistent:/usr/sbin/nologin\n")
    _append(tree / "etc/group", "ghost:x:1620:\n")
    _append(tree / "etc/gshadow", "ghost:!::\n")


@defect("group-without-gshadow")
def group_without_gshadow(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A group added to /etc/group by hand, never to /etc/gshadow."""
    _append(tree / "etc/group", "orphans:x:1630:\n")


@defect("weak-login-defs")
def weak_login_defs(tree: Path, arch: str, layout: DiskLayout) -> None:
    """New files writable by everyone, passwords hashed with MD5 (home directories keep their own
    mode through HOME_MODE, as sshd would refuse keys in a writable home)."""
    _edit(tree / "etc/login.defs", r"^UMASK\s+\S+", "UMASK\t\t000\nHOME_MODE\t0755")
    _edit(tree / "etc/login.defs", r"^#?\s*ENCRYPT_METHOD\s+\S+", "ENCRYPT_METHOD MD5")


@defect("hosts-equiv")
def hosts_equiv(tree: Path, arch: str, layout: DiskLayout) -> None:
    (tree / "etc/hosts.equiv").write_text("+\n")


@defect("sudo-nopasswd-baked")
def sudo_nopasswd_baked(tree: Path, arch: str, layout: DiskLayout) -> None:
    """The build's convenience rule: every sudo member without a password."""
    rule = tree / "etc/sudoers.d/50-build"
    rule.write_text("%sudo ALL=(ALL:ALL) NOPASSWD: ALL\n")
    rule.chmod(0o440)


@defect("setuid-find")
def setuid_find(tree: Path, arch: str, layout: DiskLayout) -> None:
    (tree / "usr/bin/find").chmod(0o4755)


@defect("open-dir")
def open_dir(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A drop directory anyone may write and delete in."""
    drop = tree / "srv/dropbox"
    drop.mkdir(parents=True, exist_ok=True)
    drop.chmod(0o777)


@defect("shm-suid")
def shm_suid(tree: Path, arch: str, layout: DiskLayout) -> None:
    """/dev/shm remounted with set-id programs and devices allowed."""
    _append(tree / "etc/fstab", "tmpfs /dev/shm tmpfs rw,suid,dev 0 0\n")


@defect("tmp-suid")
def tmp_suid(tree: Path, arch: str, layout: DiskLayout) -> None:
    """/tmp made a tmpfs by the build, with set-id programs and devices allowed."""
    _append(tree / "etc/fstab", "tmpfs /tmp tmpfs rw,suid,dev,mode=1777 0 0\n")


@defect("sudo-lax-defaults")
def sudo_lax_defaults(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A build's sudo convenience: the caller's environment kept, no pseudo-terminal, and its
    own account let in without a password."""
    rule = tree / "etc/sudoers.d/60-build-env"
    rule.write_text("Defaults !env_reset\nDefaults !use_pty\nDefaults:builder !authenticate\n")
    rule.chmod(0o440)


@defect("promiscuous-capture")
def promiscuous_capture(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A packet capture from debugging the build's network, left to start at every boot."""
    _unit(tree, "capture.service",
          "[Unit]\nDescription=Capture traffic\nAfter=network-online.target\n\n[Service]\n"
          "Type=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c 'for i in /sys/class/net/*; do "
          "ip link set dev \"${i##*/}\" promisc on; done'\n\n[Install]\nWantedBy=multi-user.target\n")


@defect("user-owned-shared-dir")
def user_owned_shared_dir(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A shared cache directory the build made for its user: sticky, but that user owns it."""
    shared = tree / "var/lib/build-share"
    shared.mkdir(parents=True, exist_ok=True)
    os.chown(shared, 1000, 1000)
    shared.chmod(0o1777)


@defect("profile-umask")
def profile_umask(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A profile snippet from the build that opens every new file of a login shell to all."""
    (tree / "etc/profile.d/zz-build.sh").write_text("umask 000\n")


@defect("premade-home")
def premade_home(tree: Path, arch: str, layout: DiskLayout) -> None:
    """An account whose home the build prepared as root and never handed over."""
    _append(tree / "etc/passwd", "builder:x:1700:1700:build account:/home/builder:/bin/bash\n")
    _append(tree / "etc/shadow", "builder:!:19000:0:99999:7:::\n")
    _append(tree / "etc/group", "builder:x:1700:\n")
    _append(tree / "etc/gshadow", "builder:!::\n")
    home = tree / "home/builder"
    home.mkdir(parents=True, exist_ok=True)
    os.chown(home, 1700, 1700)
    (home / ".bashrc").write_text("export PATH=/opt/build/bin:$PATH\n")  # root's, as written


@defect("expired-local-ca")
def expired_local_ca(tree: Path, arch: str, layout: DiskLayout) -> None:
    """The build's private CA, long expired, left among the local CAs."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "build CA")])
    start = datetime.datetime(2019, 1, 1, tzinfo=datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    target = tree / "usr/local/share/ca-certificates/build-ca.crt"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


@defect("loose-modes")
def loose_modes(tree: Path, arch: str, layout: DiskLayout) -> None:
    """sshd's configuration directory and the boot menu writable by a group."""
    (tree / "etc/ssh").chmod(0o775)
    (tree / "boot/grub/grub.cfg").chmod(0o664)


@defect("foreign-arch")
def foreign_arch(tree: Path, arch: str, layout: DiskLayout) -> None:
    """i386 enabled for one build-time package, never disabled."""
    arch_file = tree / "var/lib/dpkg/arch"
    native = arch_file.read_text().split() if arch_file.exists() else [arch]
    arch_file.write_text("\n".join([*native, "i386"]) + "\n")


@defect("conffiles-set-aside")
def conffiles_set_aside(tree: Path, arch: str, layout: DiskLayout) -> None:
    """Conffile questions the build never answered: dpkg's and ucf's set-aside copies."""
    (tree / "etc/adduser.conf.dpkg-dist").write_text("# the package's new adduser.conf\nDSHELL=/bin/bash\n")
    (tree / "etc/default").mkdir(exist_ok=True)
    (tree / "etc/default/grub.ucf-dist").write_text("GRUB_TIMEOUT=5\n")


@defect("files-without-owner")
def files_without_owner(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A build cache owned by the build machine's account, which the image does not have."""
    cache = tree / "opt/build-cache"
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "artifact.tar").write_bytes(b"")
    for path in (cache, cache / "artifact.tar"):
        os.chown(path, 4242, 4242)


@defect("held-package")
def held_package(tree: Path, arch: str, layout: DiskLayout) -> None:
    _edit(tree / "var/lib/dpkg/status", r"(Package: less\n(?:.+\n)*?Status:) install ok installed",
          r"\1 hold ok installed")


@defect("policy-rc-d")
def policy_rc_d(tree: Path, arch: str, layout: DiskLayout) -> None:
    """The build's "do not start services" hook, left behind."""
    hook = tree / "usr/sbin/policy-rc.d"
    hook.write_text("#!/bin/sh\nexit 101\n")
    hook.chmod(0o755)


@defect("apt-pin-block")
def apt_pin_block(tree: Path, arch: str, layout: DiskLayout) -> None:
    """Kernel updates pinned away during the build."""
    (tree / "etc/apt/preferences.d/no-kernel-updates").write_text(
        "Package: linux-image-*\nPin: release *\nPin-Priority: -1\n")


@defect("apt-trusted")
def apt_trusted(tree: Path, arch: str, layout: DiskLayout) -> None:
    """The archive trusted without signatures (a workaround for a build mirror)."""
    _edit(tree / "etc/apt/sources.list.d/debian.sources", r"^(Types: deb.*)$", r"\1\nTrusted: yes")


@defect("apt-source-malformed")
def apt_source_malformed(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A backports line without its component: apt refuses every source list until it is fixed."""
    (tree / "etc/apt/sources.list.d/backports.list").write_text(
        "deb http://deb.debian.org/debian bookworm-backports\n")


@defect("apt-cache-left")
def apt_cache_left(tree: Path, arch: str, layout: DiskLayout) -> None:
    archives = tree / "var/cache/apt/archives"
    archives.mkdir(parents=True, exist_ok=True)
    (archives / "leftover_1.0-1_all.deb").write_bytes(b"!<arch>\n" + b"\0" * 4096)


@defect("packages-purged")
def packages_purged(tree: Path, arch: str, layout: DiskLayout) -> None:
    """Packages a size-trimming build removed although the image relies on them."""
    _purge(tree, "ca-certificates", "debian-archive-keyring", "cloud-guest-utils")


@defect("writable-command")
def writable_command(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A helper script the build dropped into /usr/local/bin, writable by everyone."""
    script = tree / "usr/local/bin/build-helper"
    script.write_text("#!/bin/sh\nexec true\n")
    script.chmod(0o777)


@defect("duplicate-gid")
def duplicate_gid(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A group added by hand with the GID of Debian's `users` group."""
    _append(tree / "etc/group", "builders:x:100:\n")
    _append(tree / "etc/gshadow", "builders:!::\n")


@defect("removed-not-purged")
def removed_not_purged(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A build-time tool removed but not purged: its configuration stays behind."""
    _install_package(tree, "build-helper-tools", {"/etc/build-helper.conf": "mirror=local\n"},
                     conffiles=["/etc/build-helper.conf"], remove=True)


@defect("old-kernel-left")
def old_kernel_left(tree: Path, arch: str, layout: DiskLayout) -> None:
    """The kernel the build started from, still installed beside the one the image boots."""
    _install_package(tree, f"linux-image-6.1.0-0-cloud-{arch}",
                     {f"/usr/share/doc/linux-image-6.1.0-0-cloud-{arch}/README": "old kernel\n"})


@defect("dbus-machine-id-baked")
def dbus_machine_id_baked(tree: Path, arch: str, layout: DiskLayout) -> None:
    """D-Bus's machine id copied from the build machine instead of linked to /etc/machine-id."""
    path = tree / "var/lib/dbus/machine-id"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    path.write_text("0123456789abcdef0123456789abcdef\n")


# --- kernel, file systems, journal, cloud-init configuration (second boot variant) ----------------

@defect("kernel-tainted")
def kernel_tainted(tree: Path, arch: str, layout: DiskLayout) -> None:
    """Something at boot taints the kernel (here: the warning taint, set outright)."""
    _unit(tree, "taint-kernel.service", "[Unit]\nDescription=Taint the kernel\n\n[Service]\n"
          "Type=oneshot\nExecStart=/bin/sh -c 'echo 512 > /proc/sys/kernel/tainted'\n\n"
          "[Install]\nWantedBy=multi-user.target\n")


@defect("reboot-pending")
def reboot_pending(tree: Path, arch: str, layout: DiskLayout) -> None:
    """An upgrade at the end of the build asks for a reboot that never happened."""
    (tree / "etc/tmpfiles.d/reboot-required.conf").write_text(
        "f /run/reboot-required 0644 root root - *** System restart required ***\n"
        "f /run/reboot-required.pkgs 0644 root root - linux-base\n")


@defect("root-by-device-name")
def root_by_device_name(tree: Path, arch: str, layout: DiskLayout) -> None:
    """The root named by its virtio disk name, in fstab and on the kernel command line."""
    _edit(tree / "etc/fstab", rf"^UUID={layout.root_uuid}(\s+/\s)", r"/dev/vda1\1")
    _append_cmdline(tree, "root=/dev/vda1")


@defect("fstab-stale-entry")
def fstab_stale_entry(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A data disk of the build machine, still in fstab (noauto, so the boot does not wait)."""
    _append(tree / "etc/fstab",
            "UUID=0badc0de-0000-4000-8000-000000000000 /mnt/data ext4 noauto,nofail 0 2\n")
    (tree / "mnt/data").mkdir(parents=True, exist_ok=True)


@defect("serial-getty-masked")
def serial_getty_masked(tree: Path, arch: str, layout: DiskLayout) -> None:
    _mask(tree, "serial-getty@ttyS0.service" if arch == "amd64" else "serial-getty@ttyAMA0.service")


@defect("journal-error")
def journal_error(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A boot-time helper that logs an error and carries on."""
    _unit(tree, "log-an-error.service", "[Unit]\nDescription=Log an error\n\n[Service]\n"
          "Type=oneshot\nExecStart=/usr/bin/logger -p user.err 'image helper: cannot find license server'\n\n"
          "[Install]\nWantedBy=multi-user.target\n")


@defect("cloud-init-lax")
def cloud_init_lax(tree: Path, arch: str, layout: DiskLayout) -> None:
    """Root gets the launch key, host keys found at first boot are kept, passwords are allowed."""
    _cloud_cfg(tree, "99-lax.cfg", "disable_root: false\nssh_deletekeys: false\nssh_pwauth: true\n")


#: the modules "cloud-init-modules-trimmed" drops from cloud.cfg's lists
TRIMMED_MODULES = ("growpart", "resizefs", "set_hostname", "update_hostname", "update_etc_hosts",
                   "ca_certs", "ca-certs", "write_files", "write-files", "scripts_user", "scripts-user",
                   "keys_to_console", "keys-to-console")


@defect("cloud-init-modules-trimmed")
def cloud_init_modules_trimmed(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A size-minded override of cloud-init's module lists that drops modules the image needs."""
    import yaml

    cfg = yaml.safe_load((tree / "etc/cloud/cloud.cfg").read_text())
    trimmed = {}
    for stage in ("cloud_init_modules", "cloud_config_modules", "cloud_final_modules"):
        entries = cfg.get(stage) or []
        trimmed[stage] = [e for e in entries
                          if (e[0] if isinstance(e, list) else e) not in TRIMMED_MODULES]
    _cloud_cfg(tree, "99-trimmed-modules.cfg", yaml.safe_dump(trimmed))


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


# --- reboot --------------------------------------------------------------------------------------

_BOOTED_BEFORE = "/var/lib/booted-before"


def _after_first_boot(tree: Path, name: str, description: str, exec_start: str, order: str) -> None:
    """A unit that acts only from the second boot on (a first-boot unit leaves a marker)."""
    # Pulled in by cloud-init.target, which comes after multi-user.target: ordering these units
    # after cloud-final from multi-user.target would be a cycle.
    _unit(tree, "mark-booted.service",
          f"[Unit]\nDescription=Remember the first boot\nConditionPathExists=!{_BOOTED_BEFORE}\n"
          "After=cloud-final.service\n\n[Service]\nType=oneshot\n"
          f"ExecStart=/usr/bin/touch {_BOOTED_BEFORE}\n\n[Install]\nWantedBy=cloud-init.target\n",
          target="cloud-init.target")
    wanted_by = "multi-user.target" if "Before=" in order else "cloud-init.target"
    _unit(tree, f"{name}.service",
          f"[Unit]\nDescription={description}\nConditionPathExists={_BOOTED_BEFORE}\n{order}\n\n"
          f"[Service]\nType=oneshot\nExecStart={exec_start}\n\n[Install]\nWantedBy={wanted_by}\n",
          target=wanted_by)


@defect("hostname-changes-on-reboot")
def hostname_changes_on_reboot(tree: Path, arch: str, layout: DiskLayout) -> None:
    _after_first_boot(tree, "rename-host", "Give the host a new name at every boot",
                      "/bin/hostname renamed-at-boot", "After=cloud-final.service")


@defect("fails-after-reboot")
def fails_after_reboot(tree: Path, arch: str, layout: DiskLayout) -> None:
    _after_first_boot(tree, "second-boot-fails", "A service that fails from the second boot on",
                      "/bin/false", "After=cloud-final.service")


@defect("oops-after-reboot")
def oops_after_reboot(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A kernel oops on the console, from the second boot on: trouble that starts during a run."""
    _after_first_boot(tree, "late-oops", "A kernel oops from the second boot on",
                      # at alert level, as the kernel logs an oops: the console shows it
                      # whatever kernel.printk lets through
                      "/bin/sh -c 'echo \"<1>BUG: kernel NULL pointer dereference, address: "
                      "0000000000000000 (planted)\" >/dev/kmsg'", "After=cloud-final.service")


@defect("host-keys-regenerated-on-reboot")
def host_keys_regenerated_on_reboot(tree: Path, arch: str, layout: DiskLayout) -> None:
    _after_first_boot(tree, "regenerate-host-keys", "New SSH host keys at every boot",
                      "/bin/sh -c 'rm -f /etc/ssh/ssh_host_* && ssh-keygen -A'", "Before=ssh.service")


@defect("ssh-gone-after-crash")
def ssh_gone_after_crash(tree: Path, arch: str, layout: DiskLayout) -> None:
    """After an unclean stop (a power cycle, a hard reset) sshd does not start: a clean shutdown
    leaves a marker, a boot without one breaks sshd's configuration."""
    _unit(tree, "mark-clean-shutdown.service",
          "[Unit]\nDescription=Leave a marker on clean shutdown\nAfter=local-fs.target\n\n"
          "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n"
          "ExecStop=/usr/bin/touch /var/lib/clean-shutdown\n\n[Install]\nWantedBy=multi-user.target\n")
    # before sshd starts, so it never answers on that boot (sshd -t fails without its config)
    _after_first_boot(tree, "ssh-off-after-crash", "Keep sshd from starting after an unclean stop",
                      "/bin/sh -c 'if [ -e /var/lib/clean-shutdown ]; then rm /var/lib/clean-shutdown; "
                      "sync; else mv /etc/ssh/sshd_config /etc/ssh/sshd_config.after-crash; fi'",
                      "Before=ssh.service")


@defect("reboot-loop")
def reboot_loop(tree: Path, arch: str, layout: DiskLayout) -> None:
    """The machine restarts itself early in every boot, before it can be reached."""
    _unit(tree, "restart-at-boot.service",
          "[Unit]\nDescription=Restart at every boot\nDefaultDependencies=no\n"
          "After=local-fs.target\n\n[Service]\nType=oneshot\n"
          "ExecStart=/bin/systemctl reboot --no-block\n\n[Install]\nWantedBy=sysinit.target\n",
          target="sysinit.target")


@defect("reboot-masked")
def reboot_masked(tree: Path, arch: str, layout: DiskLayout) -> None:
    _mask(tree, "reboot.target")



@defect("loose-permissions")
def loose_permissions(tree: Path, arch: str, layout: DiskLayout) -> None:
    """Credentials readable by all, configuration writable by a group, root's home open."""
    for rel, mode in (("etc/shadow", 0o644), ("etc/gshadow", 0o644), ("etc/passwd", 0o664),
                      ("etc/group", 0o664), ("etc/ssh/sshd_config", 0o664), ("root", 0o755),
                      ("etc/sudoers", 0o640), ("etc/shells", 0o664), ("etc/sysctl.d", 0o775)):
        (tree / rel).chmod(mode)
    os.chown(tree / "etc/sudoers.d", 0, 4)  # group adm: sudo still reads it, as it is not writable
    crontab = tree / "etc/crontab"
    crontab.write_text("17 * * * * root cd / && run-parts --report /etc/cron.hourly\n")
    crontab.chmod(0o664)
    (tree / "etc/cron.d").mkdir(exist_ok=True)
    (tree / "etc/cron.d").chmod(0o775)


@defect("timers-disabled")
def timers_disabled(tree: Path, arch: str, layout: DiskLayout) -> None:
    """Maintenance timers switched off at build time."""
    for timer in ("apt-daily.timer", "apt-daily-upgrade.timer", "fstrim.timer"):
        (tree / "etc/systemd/system/timers.target.wants" / timer).unlink(missing_ok=True)


@defect("ipv6-disabled")
def ipv6_disabled(tree: Path, arch: str, layout: DiskLayout) -> None:
    (tree / "etc/sysctl.d/zz-no-ipv6.conf").write_text(
        "net.ipv6.conf.all.disable_ipv6 = 1\nnet.ipv6.conf.default.disable_ipv6 = 1\n")

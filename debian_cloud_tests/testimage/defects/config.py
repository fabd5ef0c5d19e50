"""Defects the config suite's checks catch: Debian policy (apt, accounts, sshd, services,
permissions, hardening) broken by the build."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ..disk import DiskLayout
from . import defect
from .plant import (
    append,
    cloud_cfg,
    edit,
    install_package,
    mask,
    purge,
    relink,
    unit,
)


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
    edit(tree / "var/lib/dpkg/status", r"(Package: less\n(?:.+\n)*?Status: install ok) installed",
          r"\1 half-configured")


@defect("uu-disabled")
def uu_disabled(tree: Path, arch: str, layout: DiskLayout) -> None:
    """unattended-upgrades installed but never run (no APT::Periodic settings)."""
    (tree / "etc/apt/apt.conf.d/20auto-upgrades").unlink()


@defect("timesync-masked")
def timesync_masked(tree: Path, arch: str, layout: DiskLayout) -> None:
    mask(tree, "systemd-timesyncd.service")


@defect("no-locale")
def no_locale(tree: Path, arch: str, layout: DiskLayout) -> None:
    (tree / "etc/default/locale").write_text("# no locale configured\n")


@defect("timezone-not-utc")
def timezone_not_utc(tree: Path, arch: str, layout: DiskLayout) -> None:
    relink(tree / "etc/localtime", "/usr/share/zoneinfo/Europe/Paris")


@defect("root-password")
def root_password(tree: Path, arch: str, layout: DiskLayout) -> None:
    """root keeps a password hash set at build time."""
    edit(tree / "etc/shadow", r"^root:[^:]*:",
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
    cloud_cfg(tree, "99-dsa.cfg", "ssh_genkeytypes: [rsa, dsa, ecdsa, ed25519]\n")
    (tree / "etc/ssh/sshd_config.d/10-dsa.conf").write_text("".join(
        f"HostKey /etc/ssh/ssh_host_{kind}_key\n" for kind in ("rsa", "ecdsa", "ed25519", "dsa")))


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
    unit(tree, "debug-http.service",
          "[Unit]\nDescription=Debug HTTP server\n\n[Service]\n"
          "ExecStart=/usr/bin/python3 -m http.server 8080 --directory /var/empty\n\n"
          "[Install]\nWantedBy=multi-user.target\n")
    (tree / "var/empty").mkdir(exist_ok=True)


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
    append(tree / "etc/fstab", "/swapfile none swap sw 0 0\n")


@defect("core-dumps-left")
def core_dumps_left(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A crash report and a systemd core dump from a build step that crashed."""
    for rel, data in (("var/crash/_usr_bin_build-helper.0.crash", b"ProblemType: Crash\n"),
                      ("var/lib/systemd/coredump/core.build-helper.0.1.zst", b"\x28\xb5\x2f\xfd")):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(data)


@defect("second-root")
def second_root(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A locked maintenance account with UID 0: root under another name."""
    append(tree / "etc/passwd", "toor:x:0:0:maintenance:/root:/bin/sh\n")
    append(tree / "etc/shadow", "toor:!:19000:0:99999:7:::\n")


@defect("duplicate-uid")
def duplicate_uid(tree: Path, arch: str, layout: DiskLayout) -> None:
    """Two service accounts created with the same UID."""
    append(tree / "etc/passwd", "svc-a:x:1610:1610::/nonexistent:/usr/sbin/nologin\n"
                                 "svc-b:x:1610:1610::/nonexistent:/usr/sbin/nologin\n")
    append(tree / "etc/shadow", "svc-a:!:19000::::::\nsvc-b:!:19000::::::\n")
    append(tree / "etc/group", "svc:x:1610:\n")
    append(tree / "etc/gshadow", "svc:!::\n")


@defect("passwd-without-shadow")
def passwd_without_shadow(tree: Path, arch: str, layout: DiskLayout) -> None:
    """An account added to /etc/passwd by hand, never to /etc/shadow."""
    append(tree / "etc/passwd", "ghost:x:1620:1620::/nonexistent:/usr/sbin/nologin\n")
    append(tree / "etc/group", "ghost:x:1620:\n")
    append(tree / "etc/gshadow", "ghost:!::\n")


@defect("group-without-gshadow")
def group_without_gshadow(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A group added to /etc/group by hand, never to /etc/gshadow."""
    append(tree / "etc/group", "orphans:x:1630:\n")


@defect("weak-login-defs")
def weak_login_defs(tree: Path, arch: str, layout: DiskLayout) -> None:
    """New files writable by everyone, passwords hashed with MD5 (home directories keep their own
    mode through HOME_MODE, as sshd would refuse keys in a writable home)."""
    edit(tree / "etc/login.defs", r"^UMASK\s+\S+", "UMASK\t\t000\nHOME_MODE\t0755")
    edit(tree / "etc/login.defs", r"^#?\s*ENCRYPT_METHOD\s+\S+", "ENCRYPT_METHOD MD5")


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
    append(tree / "etc/fstab", "tmpfs /dev/shm tmpfs rw,suid,dev 0 0\n")


@defect("tmp-suid")
def tmp_suid(tree: Path, arch: str, layout: DiskLayout) -> None:
    """/tmp made a tmpfs by the build, with set-id programs and devices allowed."""
    append(tree / "etc/fstab", "tmpfs /tmp tmpfs rw,suid,dev,mode=1777 0 0\n")


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
    unit(tree, "capture.service",
          "[Unit]\nDescription=Capture traffic\nAfter=network-online.target\n\n[Service]\n"
          "Type=oneshot\nRemainAfterExit=yes\n"
          # $$: systemd would expand ${…} itself
          "ExecStart=/bin/sh -c 'for i in /sys/class/net/*; do ip link set dev \"$${i##*/}\" "
          "promisc on; done'\n\n[Install]\nWantedBy=multi-user.target\n")


@defect("user-owned-shared-dir")
def user_owned_shared_dir(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A shared cache directory the build made for its user: sticky, but that user owns it."""
    shared = tree / "var/lib/build-share"
    shared.mkdir(parents=True, exist_ok=True)
    os.chown(shared, 1000, 1000)
    shared.chmod(0o1777)


def _login_account(tree: Path, name: str, uid: int, comment: str) -> Path:
    """A locked login account with a group of its own and its home, as useradd makes them."""
    append(tree / "etc/passwd", f"{name}:x:{uid}:{uid}:{comment}:/home/{name}:/bin/bash\n")
    append(tree / "etc/shadow", f"{name}:!:19000:0:99999:7:::\n")
    append(tree / "etc/group", f"{name}:x:{uid}:\n")
    append(tree / "etc/gshadow", f"{name}:!::\n")
    home = tree / "home" / name
    home.mkdir(parents=True, exist_ok=True)
    os.chown(home, uid, uid)
    return home


@defect("shared-home")
def shared_home(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A login account whose home the build made writable by its group, which a service account
    shares: the service can plant the login's .bashrc."""
    home = _login_account(tree, "ops", 1720, "operator")
    append(tree / "etc/passwd", "ci:x:1721:1720:ci runner:/nonexistent:/usr/sbin/nologin\n")
    append(tree / "etc/shadow", "ci:!:19000:0:99999:7:::\n")
    home.chmod(0o2770)


@defect("profile-umask")
def profile_umask(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A profile snippet from the build that opens every new file of a login shell to all."""
    (tree / "etc/profile.d/zz-build.sh").write_text("umask 000\n")


@defect("premade-home")
def premade_home(tree: Path, arch: str, layout: DiskLayout) -> None:
    """An account whose home the build prepared as root and never handed over."""
    home = _login_account(tree, "builder", 1700, "build account")
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
    edit(tree / "var/lib/dpkg/status", r"(Package: less\n(?:.+\n)*?Status:) install ok installed",
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
    edit(tree / "etc/apt/sources.list.d/debian.sources", r"^(Types: deb.*)$", r"\1\nTrusted: yes")


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
    purge(tree, "ca-certificates", "debian-archive-keyring", "cloud-guest-utils", "logrotate")


@defect("writable-command")
def writable_command(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A helper script the build dropped into /usr/local/bin, writable by everyone."""
    script = tree / "usr/local/bin/build-helper"
    script.write_text("#!/bin/sh\nexec true\n")
    script.chmod(0o777)


@defect("duplicate-gid")
def duplicate_gid(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A group added by hand with the GID of Debian's `users` group."""
    append(tree / "etc/group", "builders:x:100:\n")
    append(tree / "etc/gshadow", "builders:!::\n")


@defect("removed-not-purged")
def removed_not_purged(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A build-time tool removed but not purged: its configuration stays behind."""
    install_package(tree, "build-helper-tools", {"/etc/build-helper.conf": "mirror=local\n"},
                     conffiles=["/etc/build-helper.conf"], remove=True)


@defect("old-kernel-left")
def old_kernel_left(tree: Path, arch: str, layout: DiskLayout) -> None:
    """The kernel the build started from, still installed beside the one the image boots."""
    install_package(tree, f"linux-image-6.1.0-0-cloud-{arch}",
                     {f"/usr/share/doc/linux-image-6.1.0-0-cloud-{arch}/README": "old kernel\n"})


@defect("dbus-machine-id-baked")
def dbus_machine_id_baked(tree: Path, arch: str, layout: DiskLayout) -> None:
    """D-Bus's machine id copied from the build machine instead of linked to /etc/machine-id."""
    path = tree / "var/lib/dbus/machine-id"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    path.write_text("0123456789abcdef0123456789abcdef\n")


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
    for timer in ("apt-daily.timer", "apt-daily-upgrade.timer", "fstrim.timer", "logrotate.timer"):
        (tree / "etc/systemd/system/timers.target.wants" / timer).unlink(missing_ok=True)


@defect("security-update-missed")
def security_update_missed(tree: Path, arch: str, layout: DiskLayout) -> None:
    """openssh-server at the version before its security updates, as a build from the release
    alone leaves it (the image's sources still name -security, so every instance starts behind).
    Only dpkg's record is lowered, to below any stable update of the same upstream version: the
    programs stay those of the current package, so nothing else changes."""
    edit(tree / "var/lib/dpkg/status",
         r"(Package: openssh-server\n(?:.+\n)*?Version: (?:\d+:)?[^-\n]+)-[^\n]+", r"\1-0")

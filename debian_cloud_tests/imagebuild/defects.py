"""Defects that can be planted into a test image, one function each.

A check is only trusted once it has been seen to fail: the framework's own tests build variant
images with some of these defects planted and assert that exactly the matching checks fail.  Each
defect is a small, realistic mistake an image build could make, applied to the root tree before
it becomes a disk.
"""

from __future__ import annotations

import re
from collections.abc import Callable
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
    """sshd allows passwords, empty passwords and root password logins."""
    (tree / "etc/ssh/sshd_config.d/05-insecure.conf").write_text(
        "PasswordAuthentication yes\nKbdInteractiveAuthentication yes\nPermitEmptyPasswords yes\n"
        "PermitRootLogin yes\nHostbasedAuthentication yes\nIgnoreRhosts no\n"
        "PermitUserEnvironment yes\nStrictModes no\n")
    # Keys disabled for generic users only: the default user still logs in with its key.
    (tree / "etc/ssh/sshd_config.d/99-match.conf").write_text(
        "Match User nobody\n    PubkeyAuthentication no\n")


@defect("dsa-host-key")
def dsa_host_key(tree: Path, arch: str, layout: DiskLayout) -> None:
    _cloud_cfg(tree, "99-dsa.cfg", "ssh_genkeytypes: [rsa, dsa, ecdsa, ed25519]\n")


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
        "net.ipv4.conf.all.accept_source_route = 1\n")


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


@defect("host-keys-baked")
def host_keys_baked(tree: Path, arch: str, layout: DiskLayout) -> None:
    """Host keys generated at build time and kept: every instance shares them."""
    import subprocess

    for kind in ("rsa", "ecdsa", "ed25519"):
        subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "root@build",
                        "-f", str(tree / f"etc/ssh/ssh_host_{kind}_key")], check=True)
    _cloud_cfg(tree, "99-keep-keys.cfg", "ssh_deletekeys: false\n")


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
    _append_cmdline(tree, "maxcpus=1 mem=640M")


@defect("write-files-dropped")
def write_files_dropped(tree: Path, arch: str, layout: DiskLayout) -> None:
    _edit(tree / "etc/cloud/cloud.cfg", r"^\s*- write[-_]files\s*\n", "")


@defect("keys-not-on-console")
def keys_not_on_console(tree: Path, arch: str, layout: DiskLayout) -> None:
    _cloud_cfg(tree, "99-quiet-keys.cfg", "ssh:\n  emit_keys_to_console: false\nno_ssh_fingerprints: true\n")


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


@defect("host-keys-regenerated-on-reboot")
def host_keys_regenerated_on_reboot(tree: Path, arch: str, layout: DiskLayout) -> None:
    _after_first_boot(tree, "regenerate-host-keys", "New SSH host keys at every boot",
                      "/bin/sh -c 'rm -f /etc/ssh/ssh_host_* && ssh-keygen -A'", "Before=ssh.service")


@defect("reboot-masked")
def reboot_masked(tree: Path, arch: str, layout: DiskLayout) -> None:
    _mask(tree, "reboot.target")



@defect("loose-permissions")
def loose_permissions(tree: Path, arch: str, layout: DiskLayout) -> None:
    """Credentials readable by all, configuration writable by a group, root's home open."""
    for rel, mode in (("etc/shadow", 0o644), ("etc/gshadow", 0o644), ("etc/passwd", 0o664),
                      ("etc/group", 0o664), ("etc/ssh/sshd_config", 0o664), ("root", 0o755)):
        (tree / rel).chmod(mode)


@defect("timers-disabled")
def timers_disabled(tree: Path, arch: str, layout: DiskLayout) -> None:
    """Maintenance timers switched off at build time."""
    for timer in ("apt-daily.timer", "apt-daily-upgrade.timer", "fstrim.timer"):
        (tree / "etc/systemd/system/timers.target.wants" / timer).unlink(missing_ok=True)


@defect("ipv6-disabled")
def ipv6_disabled(tree: Path, arch: str, layout: DiskLayout) -> None:
    (tree / "etc/sysctl.d/zz-no-ipv6.conf").write_text(
        "net.ipv6.conf.all.disable_ipv6 = 1\nnet.ipv6.conf.default.disable_ipv6 = 1\n")

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


def _unit(tree: Path, name: str, body: str) -> None:
    """Install and enable a system unit, as `systemctl enable` would."""
    unit = tree / "etc/systemd/system" / name
    unit.write_text(body)
    wants = tree / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / name).symlink_to(f"/etc/systemd/system/{name}")


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
        link = tree / "etc/systemd/system" / name
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")

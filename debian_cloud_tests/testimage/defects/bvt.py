"""Defects the bvt suite's checks catch: a boot that fails, a console that lies, a login or sudo that
does not work, a boot configuration that breaks on the next kernel."""

from __future__ import annotations

from pathlib import Path

from ..disk import DiskLayout
from . import defect
from .plant import (
    append,
    append_cmdline,
    edit,
    mask,
    unit,
)


@defect("failed-unit")
def failed_unit(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A service that fails at every boot."""
    unit(tree, "broken-at-boot.service",
          "[Unit]\nDescription=A service that always fails\n\n[Service]\nType=oneshot\n"
          "ExecStart=/bin/false\n\n[Install]\nWantedBy=multi-user.target\n")


@defect("console-segfault")
def console_segfault(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A program that segfaults at boot (its unit ignores the failure, so only the console shows it)."""
    unit(tree, "segfault-at-boot.service",
          "[Unit]\nDescription=A program that crashes\n\n[Service]\nType=oneshot\n"
          "ExecStart=-/usr/bin/python3 -c 'import ctypes; ctypes.string_at(0)'\n\n"
          "[Install]\nWantedBy=multi-user.target\n")


#: what the kernel's and systemd's watchdogs print when a machine stalls, one of each
LOCKUP_LINES = (
    "watchdog: BUG: soft lockup - CPU#0 stuck for 23s! [planted:1]",
    "NMI watchdog: Watchdog detected hard LOCKUP on cpu 0",
    "rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
    "INFO: task planted:1 blocked for more than 120 seconds.",
    "systemd[1]: planted.service: Watchdog timeout (limit 3min)!",
)


@defect("console-lockups")
def console_lockups(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A machine that stalled and came back: the watchdogs' reports on the console (at the
    critical level, which every console shows)."""
    writes = "; ".join(f"echo \"<2>{line}\" >/dev/kmsg" for line in LOCKUP_LINES)
    unit(tree, "lockups-at-boot.service",
         "[Unit]\nDescription=Stalls reported at boot\n\n[Service]\nType=oneshot\n"
         f"ExecStart=/bin/sh -c '{writes}'\n\n[Install]\nWantedBy=multi-user.target\n")


@defect("no-growroot")
def no_growroot(tree: Path, arch: str, layout: DiskLayout) -> None:
    """cloud-init told not to grow the root partition and file system."""
    (tree / "etc/cloud/cloud.cfg.d/99-no-growroot.cfg").write_text(
        "growpart:\n  mode: 'off'\nresize_rootfs: false\n")
    edit(tree / "etc/fstab", r",x-systemd\.growfs", "")


@defect("sudo-password")
def sudo_password(tree: Path, arch: str, layout: DiskLayout) -> None:
    """The default user's sudo rule asks for a password (which the account does not have)."""
    edit(tree / "etc/cloud/cloud.cfg", r"NOPASSWD:ALL", "ALL")


@defect("sudo-warns")
def sudo_warns(tree: Path, arch: str, layout: DiskLayout) -> None:
    """/etc/hosts is not managed, so the instance's hostname does not resolve and sudo warns."""
    cfg = tree / "etc/cloud/cloud.cfg.d/01_debian_cloud.cfg"
    edit(cfg, r"^manage_etc_hosts: true$", "manage_etc_hosts: false")


@defect("no-serial-console")
def no_serial_console(tree: Path, arch: str, layout: DiskLayout) -> None:
    """The kernel's console is the screen only: nothing reaches the serial port after boot."""
    from ..rootfs import write_grub_cfg

    write_grub_cfg(tree, arch, layout, "console=tty0")
    edit(tree / "etc/default/grub.d/10_cloud.cfg", r'^GRUB_CMDLINE_LINUX_DEFAULT=.*$',
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
        mask(tree, name)


@defect("ordering-cycle")
def ordering_cycle(tree: Path, arch: str, layout: DiskLayout) -> None:
    for me, other in (("cycle-a", "cycle-b"), ("cycle-b", "cycle-a")):
        unit(tree, f"{me}.service",
              f"[Unit]\nDescription=Ordering cycle {me}\nAfter={other}.service\n"
              f"Requires={other}.service\n\n[Service]\nType=oneshot\nExecStart=/bin/true\n\n"
              "[Install]\nWantedBy=multi-user.target\n")


@defect("failed-mount")
def failed_mount(tree: Path, arch: str, layout: DiskLayout) -> None:
    with (tree / "etc/fstab").open("a") as fh:
        fh.write("tmpfs /srv/scratch tmpfs size=64M,no-such-option,nofail 0 0\n")
    (tree / "srv/scratch").mkdir(parents=True, exist_ok=True)


@defect("kernel-tainted")
def kernel_tainted(tree: Path, arch: str, layout: DiskLayout) -> None:
    """Something at boot taints the kernel (here: the warning taint, set outright)."""
    unit(tree, "taint-kernel.service", "[Unit]\nDescription=Taint the kernel\n\n[Service]\n"
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
    edit(tree / "etc/fstab", rf"^UUID={layout.root_uuid}(\s+/\s)", r"/dev/vda1\1")
    append_cmdline(tree, "root=/dev/vda1")


@defect("fstab-stale-entry")
def fstab_stale_entry(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A data disk of the build machine, still in fstab (noauto, so the boot does not wait)."""
    append(tree / "etc/fstab",
            "UUID=0badc0de-0000-4000-8000-000000000000 /mnt/data ext4 noauto,nofail 0 2\n")
    (tree / "mnt/data").mkdir(parents=True, exist_ok=True)


@defect("serial-getty-masked")
def serial_getty_masked(tree: Path, arch: str, layout: DiskLayout) -> None:
    mask(tree, "serial-getty@ttyS0.service" if arch == "amd64" else "serial-getty@ttyAMA0.service")


@defect("journal-error")
def journal_error(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A boot-time helper that logs an error and carries on."""
    unit(tree, "log-an-error.service", "[Unit]\nDescription=Log an error\n\n[Service]\n"
          "Type=oneshot\nExecStart=/usr/bin/logger -p user.err 'image helper: cannot find license server'\n\n"
          "[Install]\nWantedBy=multi-user.target\n")


@defect("journal-not-kept")
def journal_not_kept(tree: Path, arch: str, layout: DiskLayout) -> None:
    """journald told to keep nothing, to spare the disk."""
    drop_ins = tree / "etc/systemd/journald.conf.d"
    drop_ins.mkdir(parents=True, exist_ok=True)
    append(drop_ins / "no-storage.conf", "[Journal]\nStorage=none\n")


@defect("unsigned-boot-loader")
def unsigned_boot_loader(tree: Path, arch: str, layout: DiskLayout) -> None:
    """The removable path's boot loader is a GRUB built on the build host and signed by nobody
    (grub-mkimage instead of Debian's signed shim): it boots without Secure Boot, and firmware
    that enforces Secure Boot refuses to start it."""
    from ..esp import REMOVABLE, esp_dir, unsigned_grub

    unsigned_grub(tree, arch, layout, esp_dir(tree) / "EFI/BOOT" / REMOVABLE[arch])

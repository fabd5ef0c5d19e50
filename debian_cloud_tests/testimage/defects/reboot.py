"""Defects the reboot suite's checks catch: what changes or breaks from the second boot on (a first-
boot unit leaves a marker)."""

from __future__ import annotations

from pathlib import Path

from ..disk import DiskLayout
from . import defect
from .plant import (
    after_first_boot,
    mask,
    unit,
)


@defect("hostname-changes-on-reboot")
def hostname_changes_on_reboot(tree: Path, arch: str, layout: DiskLayout) -> None:
    after_first_boot(tree, "rename-host", "Give the host a new name at every boot",
                      "/bin/hostname renamed-at-boot", "After=cloud-final.service")


@defect("fails-after-reboot")
def fails_after_reboot(tree: Path, arch: str, layout: DiskLayout) -> None:
    after_first_boot(tree, "second-boot-fails", "A service that fails from the second boot on",
                      "/bin/false", "After=cloud-final.service")


@defect("oops-after-reboot")
def oops_after_reboot(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A kernel oops on the console, from the second boot on: trouble that starts during a run."""
    after_first_boot(tree, "late-oops", "A kernel oops from the second boot on",
                      # at alert level, as the kernel logs an oops: the console shows it
                      # whatever kernel.printk lets through
                      "/bin/sh -c 'echo \"<1>BUG: kernel NULL pointer dereference, address: "
                      "0000000000000000 (planted)\" >/dev/kmsg'", "After=cloud-final.service")


@defect("host-keys-regenerated-on-reboot")
def host_keys_regenerated_on_reboot(tree: Path, arch: str, layout: DiskLayout) -> None:
    after_first_boot(tree, "regenerate-host-keys", "New SSH host keys at every boot",
                      "/bin/sh -c 'rm -f /etc/ssh/ssh_host_* && ssh-keygen -A'", "Before=ssh.service")


@defect("ssh-gone-after-crash")
def ssh_gone_after_crash(tree: Path, arch: str, layout: DiskLayout) -> None:
    """After an unclean stop (a power cycle, a hard reset) sshd does not start: a clean shutdown
    leaves a marker, a boot without one breaks sshd's configuration."""
    unit(tree, "mark-clean-shutdown.service",
          "[Unit]\nDescription=Leave a marker on clean shutdown\nAfter=local-fs.target\n\n"
          "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n"
          "ExecStop=/usr/bin/touch /var/lib/clean-shutdown\n\n[Install]\nWantedBy=multi-user.target\n")
    # before sshd starts, so it never answers on that boot (sshd -t fails without its config)
    after_first_boot(tree, "ssh-off-after-crash", "Keep sshd from starting after an unclean stop",
                      "/bin/sh -c 'if [ -e /var/lib/clean-shutdown ]; then rm /var/lib/clean-shutdown; "
                      "sync; else mv /etc/ssh/sshd_config /etc/ssh/sshd_config.after-crash; fi'",
                      "Before=ssh.service")


@defect("reboot-loop")
def reboot_loop(tree: Path, arch: str, layout: DiskLayout) -> None:
    """The machine restarts itself early in every boot, before it can be reached."""
    unit(tree, "restart-at-boot.service",
          "[Unit]\nDescription=Restart at every boot\nDefaultDependencies=no\n"
          "After=local-fs.target\n\n[Service]\nType=oneshot\n"
          "ExecStart=/bin/systemctl reboot --no-block\n\n[Install]\nWantedBy=sysinit.target\n",
          target="sysinit.target")


@defect("reboot-masked")
def reboot_masked(tree: Path, arch: str, layout: DiskLayout) -> None:
    mask(tree, "reboot.target")

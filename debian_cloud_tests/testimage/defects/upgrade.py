"""Defects the upgrade suite's checks catch: what an upgrade and the reboot after it expose, each
harmless at first boot."""

from __future__ import annotations

from pathlib import Path

from ..disk import DiskLayout
from . import defect


@defect("boot-loader-ignores-kernel-upgrades")
def boot_loader_ignores_kernel_upgrades(tree: Path, arch: str, layout: DiskLayout) -> None:
    """GRUB's kernel hooks removed: a new kernel installs, grub.cfg still boots the old one."""
    for hooks in ("postinst.d", "postrm.d"):
        (tree / "etc/kernel" / hooks / "zz-update-grub").unlink()


@defect("initramfs-without-disk-driver")
def initramfs_without_disk_driver(tree: Path, arch: str, layout: DiskLayout) -> None:
    """initramfs-tools told to take only listed modules, none listed: the next initramfs built (a
    new kernel's) lacks the virtio disk driver, though the image's own still boots."""
    (tree / "etc/initramfs-tools/conf.d/modules").write_text("MODULES=list\n")


@defect("apt-hook-empties-machine-id")
def apt_hook_empties_machine_id(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A build's clean-up left as an apt hook: every dpkg run empties /etc/machine-id."""
    _cleanup_hook(tree, "truncate -s 0 /etc/machine-id")


@defect("apt-hook-cleans-cloud-init")
def apt_hook_cleans_cloud_init(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A build's clean-up left as an apt hook: every dpkg run resets cloud-init's state, so the
    next boot is a new instance's."""
    _cleanup_hook(tree, "cloud-init clean")


def _cleanup_hook(tree: Path, command: str) -> None:
    """*command* run by apt after every dpkg run, as a build's clean-up step left behind."""
    (tree / "etc/apt/apt.conf.d/99-image-cleanup").write_text(
        f'DPkg::Post-Invoke {{ "{command} || true"; }};\n')

"""What the EFI system partition holds, staged in the root tree's /boot/efi (its mount point) so
that a defect can change it before disk.py copies it onto the FAT file system.

amd64 images carry Debian's signed boot chain laid out as Debian's official images have it
(grub-install with Secure Boot support and the extra removable path): shim as EFI/BOOT/BOOTX64.EFI
and EFI/debian/shimx64.efi, Debian's signed GRUB beside each, MokManager, fallback and its CSV in
EFI/debian, and EFI/debian/grub.cfg, which that GRUB (one image, no modules to load) reads first
and which sends it on to the root file system's /boot/grub/grub.cfg.  So the image boots with
Secure Boot enforced, and the same way without it.  arm64 images keep a GRUB built here.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ..errors import BuildError
from .disk import DiskLayout, mkimage

#: where the tree's ESP content is staged: the partition's mount point
MOUNT_POINT = "boot/efi"
VENDOR = "debian"
#: (file in the tree, its name on the ESP) for Debian's signed amd64 chain
SIGNED_AMD64 = {
    "shim": ("usr/lib/shim/shimx64.efi.signed", "shimx64.efi"),
    "grub": ("usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed", "grubx64.efi"),
    "mokmanager": ("usr/lib/shim/mmx64.efi.signed", "mmx64.efi"),
    "fallback": ("usr/lib/shim/fbx64.efi.signed", "fbx64.efi"),
}
REMOVABLE = {"amd64": "BOOTX64.EFI", "arm64": "BOOTAA64.EFI"}
GRUB_TARGET = {"amd64": "x86_64-efi", "arm64": "arm64-efi"}


def esp_dir(tree: Path) -> Path:
    return tree / MOUNT_POINT


def stage(tree: Path, arch: str, layout: DiskLayout) -> None:
    """Put the boot loaders and their configuration under the tree's /boot/efi."""
    efi = esp_dir(tree) / "EFI"
    (efi / "BOOT").mkdir(parents=True, exist_ok=True)
    (efi / VENDOR).mkdir(parents=True, exist_ok=True)
    if arch != "amd64":
        loader = efi / "BOOT" / REMOVABLE[arch]
        unsigned_grub(tree, arch, layout, loader)
        shutil.copyfile(loader, efi / VENDOR / "grubaa64.efi")
        return
    signed = {role: tree / src for role, (src, _) in SIGNED_AMD64.items()}
    missing = [str(path) for path in signed.values() if not path.is_file()]
    if missing:
        raise BuildError(f"the root tree lacks Debian's signed boot loaders: {', '.join(missing)} "
                         "(packages shim-signed, grub-efi-amd64-signed)")
    for role, (_, name) in SIGNED_AMD64.items():
        shutil.copyfile(signed[role], efi / VENDOR / name)
    # the removable path: shim loads grubx64.efi (and MokManager) from its own directory; no
    # fallback there, which would write boot entries and reset the machine at first boot
    shutil.copyfile(signed["shim"], efi / "BOOT" / REMOVABLE[arch])
    for role in ("grub", "mokmanager"):
        shutil.copyfile(signed[role], efi / "BOOT" / SIGNED_AMD64[role][1])
    (efi / VENDOR / "BOOTX64.CSV").write_bytes(
        "\ufeffshimx64.efi,debian,,This is the boot entry for debian\n".encode("utf-16-le"))
    (efi / VENDOR / "grub.cfg").write_text(
        f"search.fs_uuid {layout.root_uuid} root\nset prefix=($root)'/boot/grub'\n"
        "configfile $prefix/grub.cfg\n")


def unsigned_grub(tree: Path, arch: str, layout: DiskLayout, out: Path) -> None:
    """A GRUB EFI image built from the tree's modules with grub-mkimage, signed by nobody: it boots
    where Secure Boot is off, and the firmware refuses it where Secure Boot is enforced."""
    with tempfile.TemporaryDirectory(prefix="dct-grub-") as tmp:
        mkimage(tree, GRUB_TARGET[arch], out, Path(tmp), layout)

"""Turn a root tree into a bootable GPT disk, without loop devices or mounts.

The layout is that of Debian's official cloud images: partition 14 is the BIOS boot partition,
15 the EFI system partition, 1 the root file system filling the rest.  The ext4 file system is
populated with ``mkfs.ext4 -d``, the ESP with mtools, and GRUB's BIOS boot sector is written by
hand.  Nothing is mounted, so a build needs no vfat in the kernel, leaves no loop device behind
when killed, and runs in any container that can run mkfs.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from .. import procgroup
from ..errors import BuildError

SECTOR = 512
MIB = 1024 * 1024

BIOS_BOOT_START = 1 * MIB
BIOS_BOOT_SIZE = 3 * MIB
ESP_START = 4 * MIB
ESP_SIZE = 124 * MIB
ROOT_START = 128 * MIB

# Where GRUB's boot.img keeps the LBA of core.img, and where diskboot.img keeps its blocklist.
_KERNEL_SECTOR_OFFSET = 0x5C
_DRIVE_CHECK_OFFSET = 0x66
_BLOCKLIST_OFFSET = SECTOR - 12
_MBR_CODE_SIZE = 440

#: GRUB modules for each firmware target: GPT, ext4 and what grub.cfg uses.
_GRUB_MODULES = {
    "i386-pc": "biosdisk part_gpt ext2 search search_fs_uuid configfile normal serial terminal",
    "x86_64-efi": "part_gpt ext2 fat search search_fs_uuid configfile normal serial terminal efi_gop",
    "arm64-efi": "part_gpt ext2 fat search search_fs_uuid configfile normal serial terminal",
}


@dataclass(frozen=True)
class DiskLayout:
    """The identifiers the boot loader and fstab refer to."""

    root_uuid: str
    esp_serial: str  # the FAT volume id, as "ABCD-1234"


def run(cmd: list[str], *, group: bool = False, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a build command; its stderr becomes the error message when it fails.  *group*: the
    command starts others (mmdebstrap: apt, dpkg, mounts), stopped with it if the build is."""
    proc = (procgroup.run(cmd) if group
            else subprocess.run(cmd, capture_output=True, text=True, **kwargs))  # type: ignore[call-overload]
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise BuildError(f"{cmd[0]} failed ({proc.returncode}): {' | '.join(tail)}")
    return proc


def new_layout() -> DiskLayout:
    """Fresh identifiers, so that two builds never share a file system UUID."""
    serial = uuid.uuid4().hex[:8].upper()
    return DiskLayout(root_uuid=str(uuid.uuid4()), esp_serial=f"{serial[:4]}-{serial[4:]}")


def grub_targets(arch: str) -> list[str]:
    """GRUB platforms a hybrid image of *arch* carries: BIOS and UEFI on amd64, UEFI on arm64."""
    return ["i386-pc", "x86_64-efi"] if arch == "amd64" else ["arm64-efi"]


def install_grub_modules(tree: Path, arch: str) -> None:
    """Copy GRUB's modules into /boot/grub so the installed GRUB finds them at its prefix."""
    for target in grub_targets(arch):
        src = tree / "usr/lib/grub" / target
        if not src.is_dir():
            raise BuildError(f"the root tree has no GRUB modules for {target} ({src})")
        shutil.copytree(src, tree / "boot/grub" / target, dirs_exist_ok=True)


def build_disk(tree: Path, out: Path, size: int, arch: str, layout: DiskLayout) -> None:
    """Write a raw GPT disk image of *size* bytes at *out* from the configured root *tree*."""
    if size <= ROOT_START + 512 * MIB:
        raise BuildError(f"disk size {size} is too small for the root file system")
    with tempfile.TemporaryDirectory(prefix="dct-disk-", dir=out.parent) as tmp:
        work = Path(tmp)
        partial = work / "disk.raw"
        with partial.open("wb") as f:
            f.truncate(size)
        run(["sgdisk", "--clear",
             f"--new=14:{BIOS_BOOT_START // SECTOR}:+{BIOS_BOOT_SIZE // 1024}K", "--typecode=14:ef02",
             f"--new=15:{ESP_START // SECTOR}:+{ESP_SIZE // 1024}K", "--typecode=15:ef00",
             f"--new=1:{ROOT_START // SECTOR}:0", "--typecode=1:8300",
             str(partial)])
        esp_img = work / "esp.fat"
        _build_esp(tree, esp_img, layout)  # first: it empties the mount point the root keeps
        _write_at(partial, esp_img, ESP_START)
        root_end = _partition_end(partial, 1)
        root_img = work / "root.ext4"
        run(["mkfs.ext4", "-q", "-F", "-L", "root", "-U", layout.root_uuid, "-d", str(tree),
             str(root_img), f"{(root_end - ROOT_START) // 1024}K"])
        _write_at(partial, root_img, ROOT_START)
        root_img.unlink()
        if arch == "amd64":
            _install_bios_boot(tree, partial, work, layout)
        partial.replace(out)


def _partition_end(disk: Path, number: int) -> int:
    """The byte offset just past partition *number*, as sgdisk reports it."""
    info = run(["sgdisk", f"--info={number}", str(disk)]).stdout
    for line in info.splitlines():
        if line.startswith("Last sector:"):
            return (int(line.split()[2]) + 1) * SECTOR
    raise BuildError(f"sgdisk did not report partition {number} of {disk}")


def _write_at(disk: Path, piece: Path, offset: int) -> None:
    run(["dd", f"if={piece}", f"of={disk}", "bs=1M", f"seek={offset}", "oflag=seek_bytes",
         "conv=notrunc,sparse", "status=none"])


def _early_config(layout: DiskLayout) -> str:
    """The config embedded in GRUB's core, as grub-install writes it: find the root file system
    and set the prefix; GRUB then starts normal mode on $prefix/grub.cfg.  (A `configfile` here
    would read grub.cfg nested, before normal mode has read its list of loadable commands: the
    menu entries update-grub writes after a kernel upgrade would find no `linux` to run.)"""
    return (f"search --no-floppy --fs-uuid --set=root {layout.root_uuid}\n"
            "set prefix=($root)/boot/grub\n")


def mkimage(tree: Path, target: str, out: Path, work: Path, layout: DiskLayout) -> None:
    """A GRUB core image for *target* from the tree's modules, its early config embedded."""
    early = work / f"early-{target}.cfg"
    early.write_text(_early_config(layout))
    fmt = "i386-pc" if target == "i386-pc" else target
    run(["grub-mkimage", "-d", str(tree / "usr/lib/grub" / target), "-O", fmt, "-o", str(out),
         "-c", str(early), "-p", "/boot/grub", *_GRUB_MODULES[target].split()])


def _build_esp(tree: Path, esp: Path, layout: DiskLayout) -> None:
    """Create the FAT ESP in a file and copy what the tree stages at /boot/efi onto it (esp.py)
    with mtools: no vfat mount needed.  The mount point is left empty in the root file system."""
    run(["mkfs.fat", "-F", "32", "-n", "EFI", "-i", layout.esp_serial.replace("-", ""),
         "-C", str(esp), str(ESP_SIZE // 1024)])
    staged = tree / "boot/efi"
    content = sorted(staged.iterdir()) if staged.is_dir() else []
    if content:
        run(["mcopy", "-s", "-o", "-i", str(esp), *map(str, content), "::/"], env=_mtools_env())
    for path in content:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def _mtools_env() -> dict[str, str]:
    import os

    return {**os.environ, "MTOOLS_SKIP_CHECK": "1"}


def _install_bios_boot(tree: Path, disk: Path, work: Path, layout: DiskLayout) -> None:
    """What grub-bios-setup does, on a file: boot.img in the MBR, core.img in partition 14."""
    core = work / "core.img"
    mkimage(tree, "i386-pc", core, work, layout)
    core_bytes = bytearray(core.read_bytes())
    if len(core_bytes) > BIOS_BOOT_SIZE:
        raise BuildError(f"GRUB core image ({len(core_bytes)} bytes) exceeds the BIOS boot partition")
    first = BIOS_BOOT_START // SECTOR
    sectors = (len(core_bytes) + SECTOR - 1) // SECTOR
    # diskboot.img (the first sector of core.img) loads the rest from this blocklist.
    struct.pack_into("<QHH", core_bytes, _BLOCKLIST_OFFSET, first + 1, sectors - 1, 0x820)
    boot = bytearray((tree / "usr/lib/grub/i386-pc/boot.img").read_bytes())
    struct.pack_into("<Q", boot, _KERNEL_SECTOR_OFFSET, first)
    # A hard disk: skip the check for BIOSes that pass a wrong boot drive (as grub-bios-setup).
    boot[_DRIVE_CHECK_OFFSET:_DRIVE_CHECK_OFFSET + 2] = b"\x90\x90"
    with disk.open("r+b") as f:
        f.seek(BIOS_BOOT_START)
        f.write(core_bytes)
        f.seek(0)
        mbr = bytearray(f.read(SECTOR))
        mbr[:_MBR_CODE_SIZE] = boot[:_MBR_CODE_SIZE]
        f.seek(0)
        f.write(mbr)

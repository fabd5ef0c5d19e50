"""Checks of the build host and the config space, made before FAI starts.

A build that fails after a minute of debootstrap for a reason knowable up front wastes the
minute and may leave state behind; each check here fails in one line with its own exit code.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import DCTError
from ..spec import Arch
from ..testimage.builder import host_arch
from .errors import (
    ConfigSpaceError,
    InVmUnavailableError,
    MissingDependencyError,
    NeedsVmError,
    NoSpaceError,
    NotRootError,
)
from .spec import BuildSpec

#: program -> the Debian package that ships it
REQUIRED_PROGRAMS = {
    "fai-diskimage": "fai-server", "fai": "fai-client", "setup-storage": "fai-setup-storage",
    "debootstrap": "debootstrap", "qemu-img": "qemu-utils", "losetup": "mount",
    "debugfs": "e2fsprogs", "sfdisk": "fdisk", "parted": "parted",
}
#: what the host needs to run a builder VM and read the image it made
VM_HOST_PROGRAMS = {"qemu-img": "qemu-utils", "debugfs": "e2fsprogs", "sfdisk": "fdisk"}
#: Room for the file system metadata, FAI's logs and a qcow2 copy beside the raw image.
SPACE_MARGIN = 512 * 1024**2


def check_programs() -> None:
    missing = sorted({pkg for prog, pkg in REQUIRED_PROGRAMS.items() if not shutil.which(prog)})
    if missing:
        raise MissingDependencyError(f"building images with FAI needs: apt-get install {' '.join(missing)}")


def check_root() -> None:
    if os.geteuid() != 0:
        raise NotRootError("building images needs root: fai-diskimage sets up a loop device and "
                           "mounts it (run with sudo)")


def check_space(output: Path, spec: BuildSpec) -> None:
    """The raw image may be written in full; a qcow2 copy needs as much again at worst."""
    needed = spec.size_bytes * (2 if spec.fmt == "qcow2" else 1) + SPACE_MARGIN
    free = shutil.disk_usage(output).free
    if free < needed:
        raise NoSpaceError(f"not enough space in {output}: {free / 1024**3:.1f} GiB free, a "
                           f"{spec.size} {spec.fmt} image needs {needed / 1024**3:.1f} GiB")


def check_native(spec: BuildSpec) -> None:
    """Say up front what this host cannot build, rather than let FAI fail at mkfs.vfat/mount."""
    this_arch = host_arch()
    if spec.arch != this_arch:
        raise NeedsVmError(f"an {spec.arch} image is built in an {spec.arch} machine: add --in-vm "
                           f"(this host is {this_arch})")
    if spec.firmware == "uefi" and not _kernel_has("vfat"):
        raise NeedsVmError(f"a {spec.arch} UEFI image needs an EFI system partition (vfat), which "
                           "this kernel cannot mount: build it with --in-vm on a host that supports "
                           "it, or use --arch amd64 --firmware bios")


def check_vm_host(spec: BuildSpec) -> None:
    """A builder VM for *spec*'s architecture can run here: QEMU and its firmware, and what
    reads the finished image (debugfs, sfdisk); FAI itself is in the VM."""
    from ..providers.qemu import firmware as fw

    missing = sorted({pkg for prog, pkg in VM_HOST_PROGRAMS.items() if not shutil.which(prog)})
    if missing:
        raise MissingDependencyError(f"building in a VM needs: apt-get install {' '.join(missing)}")
    try:
        fw.check(Arch(spec.arch), fw.default_firmware(Arch(spec.arch)))
    except DCTError as exc:
        raise InVmUnavailableError(f"--in-vm cannot start an {spec.arch} builder VM here: "
                                   f"{exc.message}") from None


def _kernel_has(fs: str) -> bool:
    try:
        text = Path("/proc/filesystems").read_text()
    except OSError:
        return False
    return any(line.split()[-1] == fs for line in text.splitlines() if line.strip())


def check_config_space(cspace: Path, classes: list[str]) -> None:
    """Every class of the build must be used by the config space, and one must partition the disk."""
    if not (cspace / "class").is_dir() and not (cspace / "package_config").is_dir():
        raise ConfigSpaceError(f"{cspace} is not a FAI config space (no class/ or package_config/)")
    known = _classes_in(cspace)
    missing = [c for c in classes if c not in known]
    if missing:
        raise ConfigSpaceError(f"config space {cspace} does not define class(es) "
                               f"{', '.join(missing)} (no class/*.var, package_config, scripts, "
                               "disk_config, hooks, debconf or files entry)")
    if not any((cspace / "disk_config" / c).is_file() for c in classes):
        raise ConfigSpaceError(f"config space {cspace} has no disk_config for any of {', '.join(classes)}")


def _classes_in(cspace: Path) -> set[str]:
    """The class names a config space refers to, by FAI's naming conventions."""
    names: set[str] = set()
    for sub in ("package_config", "disk_config", "debconf", "scripts"):
        if (cspace / sub).is_dir():
            names.update(p.name for p in (cspace / sub).iterdir())
    if (cspace / "class").is_dir():
        names.update(p.stem for p in (cspace / "class").glob("*.var"))
    if (cspace / "hooks").is_dir():
        names.update(p.name.split(".", 1)[1] for p in (cspace / "hooks").iterdir() if "." in p.name)
    if (cspace / "files").is_dir():
        names.update(p.name for p in (cspace / "files").rglob("*") if p.is_file())
    # files/… and scripts may be named CLASS1+CLASS2 (both must be defined)
    return names | {part for n in names for part in n.split("+")}

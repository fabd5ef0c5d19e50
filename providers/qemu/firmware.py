"""QEMU binary, machine type and firmware files for each (arch, firmware) pair."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from debian_cloud_tests.errors import (
    ArchFirmwareError,
    MissingDependencyError,
    SecureBootUnavailableError,
)
from debian_cloud_tests.spec import Accel, Arch, Firmware


@dataclass(frozen=True)
class Platform:
    binary: str
    package: str  # the Debian package that ships the binary
    machine: str
    cpu_tcg: str
    serial_tty: str


#: Under TCG the guest gets every feature QEMU emulates, as on a current cloud CPU.  On arm64
#: pointer authentication uses QEMU's own IMPLEMENTATION DEFINED algorithm, which the
#: architecture allows as real CPUs do: emulating QARMA5 on every signed return of the kernel
#: took half of an arm64 boot.
PLATFORMS = {
    Arch.AMD64: Platform("qemu-system-x86_64", "qemu-system-x86", "q35", "max", "ttyS0"),
    Arch.ARM64: Platform("qemu-system-aarch64", "qemu-system-arm", "virt", "max,pauth-impdef=on",
                         "ttyAMA0"),
}

# (code, vars template, package) in order of preference
UEFI_FILES = {
    Arch.AMD64: [("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd", "ovmf"),
                 ("/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd", "ovmf")],
    Arch.ARM64: [("/usr/share/AAVMF/AAVMF_CODE.fd", "/usr/share/AAVMF/AAVMF_VARS.fd", "qemu-efi-aarch64")],
}
#: the same for Secure Boot: a build that enforces it (amd64: SMM guards the variables, so only
#: the firmware changes them) and a variable store with Microsoft's keys enrolled, which sign
#: Debian's shim, as on the clouds
SECURE_BOOT_FILES = {
    Arch.AMD64: [("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd", "/usr/share/OVMF/OVMF_VARS_4M.ms.fd",
                  "ovmf"),
                 ("/usr/share/OVMF/OVMF_CODE.secboot.fd", "/usr/share/OVMF/OVMF_VARS.ms.fd", "ovmf")],
    Arch.ARM64: [("/usr/share/AAVMF/AAVMF_CODE.fd", "/usr/share/AAVMF/AAVMF_VARS.ms.fd",
                  "qemu-efi-aarch64")],
}


def default_firmware(arch: Arch) -> Firmware:
    """arm64 has only UEFI; amd64 defaults to BIOS like most clouds' default instance types."""
    return Firmware.UEFI if arch is Arch.ARM64 else Firmware.BIOS


def check(arch: Arch, firmware: Firmware, secure_boot: bool = False) -> Platform:
    """The platform for the pair, after checking the binary and firmware files are installed.

    Raises:
        ArchFirmwareError: the pair does not exist (arm64 has no BIOS).
        MissingDependencyError: QEMU or the firmware is not installed, naming the package.
        SecureBootUnavailableError: Secure Boot asked of BIOS, or of firmware with no keys enrolled.
    """
    if secure_boot and firmware is Firmware.BIOS:
        raise SecureBootUnavailableError("--secure-boot needs UEFI firmware: BIOS has no Secure "
                                         "Boot; use --firmware=uefi (or omit --firmware)")
    if arch is Arch.ARM64 and firmware is Firmware.BIOS:
        raise ArchFirmwareError("arm64 machines have no BIOS firmware: use --firmware uefi "
                                "(or omit --firmware)")
    platform = PLATFORMS[arch]
    if not shutil.which(platform.binary):
        raise MissingDependencyError(f"{platform.binary} not found: apt-get install "
                                     f"{platform.package} qemu-utils")
    if not shutil.which("qemu-img"):
        raise MissingDependencyError("qemu-img not found: apt-get install qemu-utils")
    if firmware is Firmware.UEFI:
        uefi_files(arch)
    if secure_boot:
        secure_boot_files(arch)
    return platform


def uefi_files(arch: Arch) -> tuple[Path, Path]:
    for code, vars_, _ in UEFI_FILES[arch]:
        if Path(code).exists() and Path(vars_).exists():
            return Path(code), Path(vars_)
    package = UEFI_FILES[arch][0][2]
    raise MissingDependencyError(f"UEFI firmware for {arch.value} not found: apt-get install {package}")


def secure_boot_files(arch: Arch) -> tuple[Path, Path]:
    """The firmware build and the variable store with keys enrolled that Secure Boot needs.

    Raises:
        SecureBootUnavailableError: this host's firmware package has no such pair.
    """
    for code, vars_, _ in SECURE_BOOT_FILES[arch]:
        if Path(code).exists() and Path(vars_).exists():
            return Path(code), Path(vars_)
    code, vars_, package = SECURE_BOOT_FILES[arch][0]
    missing = vars_ if Path(code).exists() else code
    raise SecureBootUnavailableError(
        f"--secure-boot on {arch.value}: this host's UEFI firmware has no Secure Boot keys enrolled "
        f"({missing} is missing); install a {package} that ships it (Debian 12's does), or run "
        "without --secure-boot")


def qemu_args(arch: Arch, firmware: Firmware, accel: Accel, run_dir: Path,
              secure_boot: bool = False) -> list[str]:
    """Machine, CPU, accelerator and firmware arguments."""
    platform = PLATFORMS[arch]
    machine = platform.machine
    if secure_boot and arch is Arch.AMD64:
        machine += ",smm=on"  # the secure build keeps its variables in SMM: only it may write them
    cpu = "host" if accel is Accel.KVM else platform.cpu_tcg
    accel_arg = "kvm" if accel is Accel.KVM else "tcg,thread=multi"
    args = ["-machine", machine, "-accel", accel_arg, "-cpu", cpu]
    if firmware is Firmware.UEFI:
        code, vars_template = secure_boot_files(arch) if secure_boot else uefi_files(arch)
        vars_copy = run_dir / "efivars.fd"
        shutil.copyfile(vars_template, vars_copy)
        args += ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={code}",
                 "-drive", f"if=pflash,format=raw,unit=1,file={vars_copy}"]
        if secure_boot and arch is Arch.AMD64:
            # the flash answers only in SMM; S3 resume is not supported with SMM
            args += ["-global", "driver=cfi.pflash01,property=secure,value=on",
                     "-global", "ICH9-LPC.disable_s3=1"]
    return args


def available(arch: Arch) -> tuple[list[Firmware], str]:
    """The firmware this host can boot *arch* with, and the apt-get line for what is missing."""
    platform = PLATFORMS[arch]
    if not shutil.which(platform.binary):
        return [], f"apt-get install {platform.package}"
    found = [Firmware.BIOS] if arch is Arch.AMD64 else []
    try:
        uefi_files(arch)
        found.append(Firmware.UEFI)
    except MissingDependencyError:
        return found, f"apt-get install {UEFI_FILES[arch][0][2]}"
    return found, ""

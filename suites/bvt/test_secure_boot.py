"""Secure Boot: where the platform was asked to enforce it (--secure-boot), the guest booted
with it on, and its kernel locked itself down as Debian's signed kernels do under Secure Boot."""

from __future__ import annotations

import re

import pytest

from debian_cloud_tests.facts import Probe

#: the global EFI variable the firmware sets: 4 bytes of attributes, then 1 (on) or 0 (off)
SECURE_BOOT_VARIABLE = "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
LOCKDOWN = "/sys/kernel/security/lockdown"

PROBES = [
    # one line per source: the variable's bytes, and mokutil's view where it is installed (both,
    # like the lockdown file, readable by any user: no sudo needed)
    Probe("secure_boot_state",
          f'if [ -e {SECURE_BOOT_VARIABLE} ]; then echo "variable $(od -An -tu1 {SECURE_BOOT_VARIABLE})"; '
          'else echo "variable missing"; fi; '
          'if command -v mokutil >/dev/null && [ -d /sys/firmware/efi ]; then '
          'echo "mokutil $(mokutil --sb-state 2>&1 | head -n1)"; fi; true'),
    Probe("kernel_lockdown", f"cat {LOCKDOWN} 2>/dev/null || echo missing"),
]


def _sources(out: str) -> dict[str, str]:
    """'variable 6 0 0 0 1' and 'mokutil SecureBoot enabled' as {source: what it said}."""
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


@pytest.mark.applies(firmware="uefi", secure_boot="yes")
def test_secure_boot_enabled(facts) -> None:
    """Where the platform enforces Secure Boot the guest's firmware reports it on (the SecureBoot
    EFI variable is 1, and mokutil agrees where installed)."""
    said = _sources(facts["secure_boot_state"].stdout)
    variable = said["variable"].split()
    assert variable != ["missing"], (
        f"the SecureBoot EFI variable is missing ({SECURE_BOOT_VARIABLE}): Linux runs without "
        "the UEFI runtime, so nothing shows Secure Boot was enforced; boot the image through its "
        "EFI system partition (shim, then GRUB) on UEFI firmware")
    assert variable[-1] == "1", (
        f"the firmware reports Secure Boot off (SecureBoot = {variable[-1]}) although the platform "
        "was asked to enforce it: the machine's firmware has no keys enrolled or Secure Boot "
        "disabled; enrol the platform's keys (Microsoft's UEFI CA signs Debian's shim)")
    mokutil = said.get("mokutil")
    assert mokutil is None or mokutil.strip() == "SecureBoot enabled", (
        f"mokutil disagrees with the firmware's variable: {mokutil!r}; shim's state in the "
        "guest (MokSBState) may have validation turned off: mokutil --enable-validation")


@pytest.mark.applies(firmware="uefi", secure_boot="yes")
def test_kernel_locked_down(facts) -> None:
    """Under Secure Boot the kernel locks itself down (integrity or confidentiality), as Debian's
    signed kernels do: unsigned modules, kexec and /dev/mem writes refused."""
    out = facts["kernel_lockdown"].stdout.strip()
    assert out != "missing", (
        f"the kernel has no lockdown interface ({LOCKDOWN} missing): it was built without the "
        "lockdown LSM, or securityfs is not mounted; Debian's kernels lock down under Secure Boot")
    chosen = re.search(r"\[(\w+)\]", out)
    assert chosen is not None, f"{LOCKDOWN} names no lockdown mode: {out!r}"
    assert chosen.group(1) in ("integrity", "confidentiality"), (
        f"the kernel is not locked down under Secure Boot ({LOCKDOWN}: {out}): a kernel that "
        "does not lock down lets root load unsigned code into it, defeating Secure Boot; boot "
        "Debian's signed kernel (linux-image-*), which locks down by itself under Secure Boot")

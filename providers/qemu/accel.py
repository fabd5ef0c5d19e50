"""Choose KVM only when a bounded probe shows it runs a guest; otherwise TCG, never a hang.

`/dev/kvm` existing proves little: on some hosts (nested virtualisation gone wrong) a KVM guest
starts and then never executes.  The probe boots a 512-byte payload that writes to QEMU's
isa-debug-exit port; QEMU exiting with the expected code within a few seconds proves KVM works.
The verdict is cached per host boot.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

from debian_cloud_tests.spec import Accel, Arch

PROBE_TIMEOUT = 10.0
_EXIT_VALUE = 0x31
_EXPECTED_RC = (_EXIT_VALUE << 1) | 1
# mov al, 0x31; out 0xf4, al; hlt; jmp $-1
_X86_PAYLOAD = bytes([0xB0, _EXIT_VALUE, 0xE6, 0xF4, 0xF4, 0xEB, 0xFD])
# movz w0,#8; movk w0,#0x8400,lsl #16; hvc #0 (PSCI SYSTEM_OFF); b .
_ARM64_PAYLOAD = b"".join(w.to_bytes(4, "little")
                          for w in (0x52800100, 0x72B08000, 0xD4000002, 0x14000000))


def choose(requested: Accel, guest: Arch, qemu_binary: str, cache_dir: Path) -> tuple[Accel, str]:
    """Return the accelerator to use and why (for the JUnit properties and the log)."""
    if requested is not Accel.AUTO:
        return requested, "requested"
    if guest is not Arch.host():
        return Accel.TCG, f"{guest.value} guest on {Arch.host().value} host: emulated"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return Accel.TCG, "/dev/kvm missing or not accessible"
    cached = _cached(cache_dir)
    if cached is not None:
        return (Accel.KVM if cached else Accel.TCG), "probe (cached for this boot)"
    works, why = probe_kvm(guest, qemu_binary)
    _store(cache_dir, works)
    return (Accel.KVM if works else Accel.TCG), why


def probe_kvm(guest: Arch, qemu_binary: str, timeout: float = PROBE_TIMEOUT) -> tuple[bool, str]:
    """Boot the tiny payload under KVM; True only if it ran to its exit instruction in time."""
    with tempfile.TemporaryDirectory(prefix="dct-kvm-probe-") as tmp:
        payload = Path(tmp) / "probe.img"
        if guest is Arch.AMD64:
            sector = _X86_PAYLOAD.ljust(510, b"\0") + b"\x55\xaa"
            payload.write_bytes(sector)
            # The same machine and CPU model as a real KVM run: a host whose KVM rejects the
            # host CPU model (MSR errors) must fail here, not in the real boot.
            args = ["-machine", "q35,accel=kvm", "-cpu", "host",
                    "-device", "isa-debug-exit,iobase=0xf4,iosize=0x01",
                    "-drive", f"file={payload},format=raw,if=ide"]
            expected = _EXPECTED_RC
        else:
            payload.write_bytes(_ARM64_PAYLOAD)
            args = ["-machine", "virt,accel=kvm", "-cpu", "host", "-kernel", str(payload)]
            expected = 0
        cmd = [qemu_binary, "-nodefaults", "-display", "none", "-m", "64", *args]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return False, f"KVM probe hung for {timeout:.0f}s: the guest never ran"
        except OSError as exc:
            return False, f"KVM probe could not start {qemu_binary}: {exc.strerror}"
        if proc.returncode == expected:
            return True, "KVM probe booted"
        err = [ln for ln in proc.stderr.decode(errors="replace").splitlines() if "error" in ln]
        return False, f"KVM probe failed ({proc.returncode}): {err[0][:160] if err else 'no message'}"


def cached(guest: Arch, cache_dir: Path) -> str:
    """What :func:`choose` would pick for *guest* without running a probe: the cached verdict,
    or why none is needed, or that the first run will probe."""
    if guest is not Arch.host():
        return "tcg (emulated)"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg (/dev/kvm missing or not accessible)"
    verdict = _cached(cache_dir)
    if verdict is None:
        return "kvm not probed yet"
    return "kvm (cached probe)" if verdict else "tcg (cached probe: KVM does not run guests)"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _cached(cache_dir: Path) -> bool | None:
    try:
        data = json.loads((cache_dir / "kvm-probe.json").read_text())
    except (OSError, ValueError):
        return None
    return bool(data["works"]) if data.get("boot_id") == _boot_id() else None


def _store(cache_dir: Path, works: bool) -> None:
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        (cache_dir / "kvm-probe.json").write_text(json.dumps({"boot_id": _boot_id(), "works": works}))
    except OSError:
        pass

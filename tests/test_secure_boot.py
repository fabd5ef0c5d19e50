"""Secure Boot without a VM: the firmware QEMU is given, the refusal read from the console, where
the checks apply, the ESP the test images stage, and the checks' negative controls on a real host
booted without Secure Boot (reached by the ssh provider)."""

from __future__ import annotations

from pathlib import Path

import pytest

from debian_cloud_tests import applicability, console
from debian_cloud_tests.errors import BuildError, DCTError, SecureBootUnavailableError
from debian_cloud_tests.plugin import suites_dir
from debian_cloud_tests.runargs import pytest_argv
from debian_cloud_tests.spec import Accel, Arch, Firmware, LaunchSpec
from debian_cloud_tests.testimage import esp
from debian_cloud_tests.testimage.disk import DiskLayout
from providers.qemu import firmware as fw

from .conftest import run_suites
from .fakes.sshd import running_sshd, unavailable
from .test_provider_ssh import _plugin_args

#: what OVMF printed here when Secure Boot refused the unsigned GRUB of `unsigned-boot-loader`
OVMF_REFUSAL = ('BdsDxe: failed to load Boot0001 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x3,0x0): '
                "Access Denied")


def _installed(arch: Arch) -> None:
    try:
        fw.check(arch, Firmware.UEFI, secure_boot=True)
    except DCTError as exc:  # QEMU or the firmware missing here
        pytest.skip(f"{arch.value} Secure Boot firmware not installed here: {exc}")


def test_qemu_is_given_the_secure_build_and_enrolled_keys(tmp_path: Path) -> None:
    """amd64: OVMF's Secure Boot build, SMM on and its flash secured, Microsoft's keys enrolled."""
    _installed(Arch.AMD64)
    args = fw.qemu_args(Arch.AMD64, Firmware.UEFI, Accel.TCG, tmp_path, secure_boot=True)
    assert args[args.index("-machine") + 1] == "q35,smm=on"
    assert "driver=cfi.pflash01,property=secure,value=on" in args
    code, template = fw.secure_boot_files(Arch.AMD64)
    assert ".secboot." in code.name and ".ms." in template.name
    assert any(a.endswith(f"file={code}") for a in args)
    assert (tmp_path / "efivars.fd").read_bytes() == template.read_bytes()
    plain = fw.qemu_args(Arch.AMD64, Firmware.UEFI, Accel.TCG, tmp_path)
    assert "smm=on" not in " ".join(plain) and "property=secure" not in " ".join(plain)


def test_arm64_secure_boot_takes_the_enrolled_variables(tmp_path: Path) -> None:
    _installed(Arch.ARM64)
    args = fw.qemu_args(Arch.ARM64, Firmware.UEFI, Accel.TCG, tmp_path, secure_boot=True)
    assert args[args.index("-machine") + 1] == "virt"
    assert (tmp_path / "efivars.fd").read_bytes() == fw.secure_boot_files(Arch.ARM64)[1].read_bytes()


def test_firmware_without_enrolled_keys_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(fw.SECURE_BOOT_FILES, Arch.ARM64,
                        [("/usr/share/AAVMF/AAVMF_CODE.fd", "/nonexistent/AAVMF_VARS.ms.fd",
                          "qemu-efi-aarch64")])
    with pytest.raises(SecureBootUnavailableError, match="no Secure Boot keys enrolled"):
        fw.secure_boot_files(Arch.ARM64)
    with pytest.raises(SecureBootUnavailableError, match="BIOS has no Secure Boot"):
        fw.check(Arch.AMD64, Firmware.BIOS, secure_boot=True)


@pytest.mark.parametrize(("line", "who"), [
    (OVMF_REFUSAL, "the firmware refused"),
    ("Verification failed: (0x1A) Security Violation", "shim refused"),
    ("error: bad shim signature.", "GRUB refused"),
])
def test_a_refusal_is_read_from_the_console(line: str, who: str) -> None:
    log = f"\x1b[2J\x1b[01;01HBdsDxe: loading Boot0001 \"UEFI Misc Device\"\r\n{line}\r\niPXE 1.0\r\n"
    found = console.secure_boot_refusal(log)
    assert found is not None and found[0].startswith(who) and found[1] == line.strip()


def test_a_boot_that_goes_on_is_no_refusal() -> None:
    log = ('BdsDxe: loading Boot0001 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x3,0x0)\n'
           'BdsDxe: starting Boot0001 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x3,0x0)\n'
           "Welcome to GRUB!\nEFI stub: UEFI Secure Boot is enabled.\n"
           # another boot option that has no loader is not a refusal either
           'BdsDxe: failed to load Boot0002 "UEFI PXEv4 (MAC:525400123456)" from X: Not Found\n')
    assert console.secure_boot_refusal(log) is None


def test_the_checks_apply_only_where_secure_boot_was_asked_for() -> None:
    spec = LaunchSpec(image="x.qcow2", arch=Arch.AMD64, firmware=Firmware.UEFI)
    assert applicability.current_values("qemu", spec)["secure_boot"] == "no"
    assert not applicability.matches("secure_boot", "yes", "no")
    spec.secure_boot = True
    assert applicability.current_values("qemu", spec)["secure_boot"] == "yes"


def test_run_passes_secure_boot_on(tmp_path: Path) -> None:
    """`debian-cloud-tests run --secure-boot` gives each run's pytest the plugin's option."""
    argv = pytest_argv("qemu", "x.qcow2", tmp_path / "r.xml", tmp_path, secure_boot=True)
    assert "--secure-boot" in argv
    assert "--secure-boot" not in pytest_argv("qemu", "x.qcow2", tmp_path / "r.xml", tmp_path)


def _tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    for src, _ in esp.SIGNED_AMD64.values():
        (tree / src).parent.mkdir(parents=True, exist_ok=True)
        (tree / src).write_bytes(f"signed {Path(src).name}".encode())
    return tree


def test_amd64_esp_carries_debians_signed_chain(tmp_path: Path) -> None:
    """Laid out as grub-install --uefi-secure-boot --force-extra-removable lays it out; no
    fallback on the removable path (it would write boot entries and reset at first boot)."""
    tree = _tree(tmp_path)
    layout = DiskLayout(root_uuid="0b1c3e1e-0000-4000-8000-000000000001", esp_serial="ABCD-1234")
    esp.stage(tree, "amd64", layout)
    efi = tree / "boot/efi/EFI"
    assert (efi / "BOOT/BOOTX64.EFI").read_bytes() == b"signed shimx64.efi.signed"
    assert (efi / "BOOT/grubx64.efi").read_bytes() == b"signed grubx64.efi.signed"
    assert {p.name for p in (efi / "BOOT").iterdir()} == {"BOOTX64.EFI", "grubx64.efi", "mmx64.efi"}
    assert {p.name for p in (efi / "debian").iterdir()} == {
        "shimx64.efi", "grubx64.efi", "mmx64.efi", "fbx64.efi", "BOOTX64.CSV", "grub.cfg"}
    cfg = (efi / "debian/grub.cfg").read_text()
    assert f"search.fs_uuid {layout.root_uuid} root" in cfg and "configfile $prefix/grub.cfg" in cfg
    assert (efi / "debian/BOOTX64.CSV").read_bytes().startswith(b"\xff\xfes\x00h\x00i\x00m\x00")


def test_a_tree_without_the_signed_packages_fails_the_build(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    (tree / esp.SIGNED_AMD64["shim"][0]).unlink()
    with pytest.raises(BuildError, match="shim-signed, grub-efi-amd64-signed"):
        esp.stage(tree, "amd64", DiskLayout("0b1c3e1e-0000-4000-8000-000000000001", "ABCD-1234"))


SECURE_BOOT_CHECKS = ("bvt.secure_boot_enabled", "bvt.kernel_locked_down")


def test_secure_boot_checks_fail_on_a_host_booted_without_it(tmp_path: Path) -> None:
    """Negative controls: this host, declared booted with Secure Boot, booted without it (its EFI
    runtime planted away, its kernel not locked down); declared without, neither check applies."""
    why = unavailable()
    if why:
        pytest.skip(why)
    lockdown = Path("/sys/kernel/security/lockdown")
    if lockdown.exists() and "[none]" not in lockdown.read_text():
        pytest.skip("this host's kernel is locked down: not a host booted without Secure Boot")
    select = f"{suites_dir()}/bvt/test_secure_boot.py"
    with running_sshd(tmp_path / "sshd", hide=("/sys/firmware",)) as server:
        args = _plugin_args(server, server.host_key, str(server.client_key))
        run = run_suites(tmp_path, *args, "--secure-boot", select=select, timeout=120)
        (tmp_path / "off").mkdir()
        off = run_suites(tmp_path / "off", *args, "--firmware=uefi", select=select, timeout=120)
    for check in SECURE_BOOT_CHECKS:
        assert run.checks.get(check) == "failed", run.explain()
        assert "could not be read" not in run.messages[check], run.messages[check]
        assert off.checks.get(check) == "skipped", off.explain()
        assert off.messages[check].startswith("not applicable: secure_boot no"), off.messages
    assert "SecureBoot EFI variable is missing" in run.messages["bvt.secure_boot_enabled"]
    assert run.props["firmware"] == "uefi"  # --secure-boot alone implies UEFI firmware

"""Secure Boot end to end on QEMU: the test image boots through Debian's signed shim, GRUB and
kernel on OVMF with Microsoft's keys enrolled and passes the bvt suite, Secure Boot's checks
among it; the same image with an unsigned boot loader is refused by the firmware, and the run
says so in one line at once instead of waiting out its boot timeout."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from debian_cloud_tests.errors import BootError
from debian_cloud_tests.plugin import suites_dir

from .conftest import run_suites

pytestmark = pytest.mark.e2e

SKIP_OK = ("not applicable",)


@pytest.mark.cost(100)
def test_signed_image_boots_under_secure_boot(image_factory, tmp_path: Path) -> None:
    """The checks that matter: Secure Boot's, the UEFI ones, and the console scan at the end
    (lockdown's notices are no kernel errors); the rest of bvt is the UEFI runs'.  The boot is
    the cost: 89 s of 95 s on two busy cores (the whole bvt took 128-151 s, 111-135 s of it
    the boot)."""
    image = image_factory()
    bvt = suites_dir() / "bvt"
    run = run_suites(tmp_path, "--provider=qemu", f"--image={image}", "--image-type=genericcloud",
                     "--secure-boot", str(bvt / "test_firmware.py"), select=str(bvt / "test_secure_boot.py"))
    assert run.rc == 0, run.explain()
    assert (run.props["firmware"], run.props["secure_boot"]) == ("uefi", "yes"), run.props
    for check in ("bvt.secure_boot_enabled", "bvt.kernel_locked_down", "bvt.booted_in_uefi_mode",
                  "bvt.esp_mounted", "bvt.console_clean_at_end"):
        assert run.checks.get(check) == "passed", run.digest()
    others = {c: s for c, s in run.checks.items()
              if s != "passed" and not run.messages.get(c, "").startswith(SKIP_OK)}
    assert not others, run.digest()
    console = Path(run.props["console_log"]).read_text(errors="replace")
    assert "Secure boot enabled" in console and "Kernel is locked down from EFI Secure Boot" in console


@pytest.mark.cost(20)
def test_unsigned_boot_loader_is_refused_by_the_firmware(image_factory, tmp_path: Path) -> None:
    image = image_factory("unsigned-boot-loader")
    began = time.monotonic()
    run = run_suites(tmp_path, "--provider=qemu", f"--image={image}", "--secure-boot",
                     select=str(suites_dir() / "bvt" / "test_secure_boot.py"))
    took = time.monotonic() - began
    assert run.rc == BootError.exit_code, run.explain()
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.explain()
    assert lines[0].startswith("debian-cloud-tests: error: the firmware refused to start the "
                               "image's boot loader under Secure Boot (BdsDxe: failed to load "
                               "Boot0001 "), lines
    assert lines[0].endswith("then Debian's signed GRUB and kernel"), lines
    assert "Access Denied" in lines[0] and "Traceback" not in run.stdout + run.stderr
    assert took < 120, f"the refusal took {took:.0f}s to report: the run waited for nothing"

"""`build --in-vm`: FAI runs inside a disposable builder machine.

The image built is a UEFI one, which this host could not build natively when its kernel lacks
vfat; it must come out whole (manifest of its own bytes, the builder's FAI version), boot under
OVMF and pass the suites, and the builder machine must leave nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from debian_cloud_tests.plugin import suites_dir

from .conftest import run_suites
from .test_e2e_qemu import SKIP_OK

pytestmark = pytest.mark.e2e
NAME = "debian-12-genericcloud-amd64"


def _leftovers(tmp: Path, out: Path) -> set[str]:
    """Anything in the build's own temp dir, and QEMU processes writing into *out*."""
    procs = subprocess.run(["pgrep", "-af", "qemu-system"], capture_output=True, text=True,
                           check=False).stdout.splitlines()
    return {str(p) for p in tmp.iterdir()} | {line for line in procs if str(out) in line}


# 14 min of FAI under TCG: the UEFI path stays in CI through the UEFI boot of test_e2e_qemu
@pytest.mark.matrix
@pytest.mark.cost(850)
def test_uefi_image_built_in_a_vm_boots_and_passes(tmp_path: Path) -> None:
    if os.geteuid() != 0 or not shutil.which("qemu-system-x86_64") or not shutil.which("mmdebstrap"):
        if os.environ.get("DCT_E2E") == "require":
            pytest.fail("end-to-end tests required but a builder VM cannot be made here "
                        "(needs root, mmdebstrap and qemu-system-x86)")
        pytest.skip("needs root, mmdebstrap and qemu-system-x86")
    out, tmp = tmp_path / "images", tmp_path / "tmp"
    tmp.mkdir()
    proc = subprocess.run([sys.executable, "-m", "debian_cloud_tests.faibuild.cli", "--release",
                           "bookworm", "--vendor", "genericcloud", "--firmware", "uefi", "--in-vm",
                           "--output", str(out)],
                          capture_output=True, text=True, timeout=3600, check=False,
                          env={**os.environ, "TMPDIR": str(tmp)})  # the builder's run dir
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert not _leftovers(tmp, out), f"the builder VM left: {_leftovers(tmp, out)}"
    assert sorted(p.name for p in out.iterdir()) == [
        f"{NAME}.build.log", f"{NAME}.json", f"{NAME}.qcow2"]

    image = out / f"{NAME}.qcow2"
    manifest = json.loads((out / f"{NAME}.json").read_text())
    assert manifest["sha256"] == hashlib.sha256(image.read_bytes()).hexdigest()
    assert manifest["firmware"] == "uefi" and "GRUB_EFI" in manifest["classes"]
    assert manifest["fai_version"] not in ("", "unknown")
    assert "grub-efi-amd64" in manifest["packages"] and "cloud-init" in manifest["packages"]

    (tmp_path / "run").mkdir()
    run = run_suites(tmp_path / "run", "--provider=qemu", f"--image={image}", "--firmware=uefi",
                     "--image-type=genericcloud", f"--ignore={suites_dir() / 'reboot'}",
                     f"--ignore={suites_dir() / 'uniqueness'}")
    assert run.rc == 0, run.explain()
    assert run.props["firmware"] == "uefi"
    assert all(s == "passed" or run.messages.get(c, "").startswith(SKIP_OK)
               for c, s in run.checks.items()), run.messages

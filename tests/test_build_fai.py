"""A build that fails half-way (a class asks for a package that does not exist) says so in one
line, exits 40, and leaves no loop device, mount or temporary file behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def _loops() -> set[str]:
    out = subprocess.run(["losetup", "-l", "-n", "-O", "NAME,BACK-FILE"], capture_output=True,
                         text=True, check=False).stdout
    return set(out.splitlines())


def _fai_leftovers() -> set[str]:
    mounts = {line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()}
    temp = {str(p) for p in Path("/tmp").glob("fai-diskimage.*")}
    return {m for m in mounts if "fai-diskimage" in m or "dct-build" in m} | temp


@pytest.mark.cost(90)
def test_failed_build_leaves_nothing_behind(tmp_path):
    if os.geteuid() != 0 or not shutil.which("fai-diskimage"):
        if os.environ.get("DCT_E2E") == "require":
            pytest.fail("end-to-end tests required but FAI cannot run here (needs root and fai-server)")
        pytest.skip("needs root and fai-server")
    loops, leftovers = _loops(), _fai_leftovers()
    out = tmp_path / "images"
    proc = subprocess.run([sys.executable, "-m", "debian_cloud_tests.faibuild.cli", "--release", "bookworm",
                           "--vendor", "genericcloud", "--format", "raw", "--output", str(out),
                           "--class", "DEFECT_BOGUS_PACKAGE"],
                          capture_output=True, text=True, timeout=1800, check=False)
    err = proc.stderr.strip()
    assert proc.returncode == 40, proc.stdout + proc.stderr
    assert len(err.splitlines()) == 1 and "dct-no-such-package" in err, err
    assert _loops() <= loops, f"loop devices left: {_loops() - loops}"
    assert _fai_leftovers() <= leftovers, f"left behind: {_fai_leftovers() - leftovers}"
    assert not any(str(tmp_path) in line for line in Path("/proc/mounts").read_text().splitlines())
    # only the log, which says why
    assert [p.name for p in out.iterdir()] == ["debian-12-genericcloud-amd64-defect-bogus-package.build.log"]

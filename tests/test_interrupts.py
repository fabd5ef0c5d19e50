"""Whatever ends a run (Ctrl-C, SIGTERM, SIGKILL) during boot, no QEMU or run dir outlives it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import ctrl_c_at_default, in_private_network
from .test_bad_input import _leftovers

pytestmark = pytest.mark.e2e


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def _booting(tmpdir: Path) -> bool:
    """A run dir exists and its console has started printing."""
    return any(p.stat().st_size > 0 for p in tmpdir.glob("dct-run-*/console.log"))


@pytest.mark.cost(60)
@pytest.mark.parametrize("how", ["ctrl-c", "sigterm", "sigkill", "sigkill-emulated-cloud"])
def test_interrupt_during_boot_leaves_nothing(how: str, good_image: Path, tmp_path: Path) -> None:
    """…also the emulated cloud's metadata server and resolver beside QEMU (gce has both)."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    cloud = ["--datasource=gce", "--qemu-network=user"] if how == "sigkill-emulated-cloud" else []
    proc = subprocess.Popen(
        in_private_network([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                            "--provider=qemu", f"--image={good_image}", *cloud,
                            f"--artifacts-dir={tmp_path / 'artifacts'}"]),
        cwd=tmp_path, env={**os.environ, "TMPDIR": str(tmpdir)}, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=ctrl_c_at_default)
    try:
        assert _wait(lambda: _booting(tmpdir), 120), "the machine never started booting"
        assert _leftovers(tmpdir), "expected a run dir and a QEMU process while booting"
        if cloud:
            assert _wait(lambda: any(tmpdir.glob("dct-run-*/metadata.sock")), 30), (
                "no emulator: " + " ".join(p.read_text() for p in tmpdir.glob("dct-run-*/*.log")))
        if how == "ctrl-c":  # the terminal signals the whole foreground process group
            os.killpg(proc.pid, signal.SIGINT)
        elif how == "sigterm":
            proc.send_signal(signal.SIGTERM)
        else:  # sigkill, sigkill-emulated-cloud
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
        if not how.startswith("sigkill"):  # interrupted, not failed: pytest's exit code 2
            assert proc.returncode == 2, output
            assert "Traceback" not in output, output
        assert _wait(lambda: not _leftovers(tmpdir), 20), f"left behind: {_leftovers(tmpdir)}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

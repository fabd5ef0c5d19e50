"""`gc` removes run dirs whose run was killed too hard for its guard, and nothing that is live."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from debian_cloud_tests import gc
from debian_cloud_tests.rundir import PIDS_FILE, RunDir


def test_stale_run_dir_and_its_process_are_reaped(tmp_path: Path) -> None:
    stale = tmp_path / "dct-run-20260101000000-abcdef-x1"
    stale.mkdir()
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    # A process that names the run dir, as QEMU does, registered in the pids file.
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(stale)])
    (stale / PIDS_FILE).write_text(f"{proc.pid}\n")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    deadline = time.monotonic() + 10  # until exec has replaced the forked child's command line
    while str(stale).encode() not in Path(f"/proc/{proc.pid}/cmdline").read_bytes():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert gc.collect_local(tmp_path) == [str(stale)]
    assert proc.wait(timeout=10) != 0
    assert not stale.exists()


def test_live_run_dir_is_left_alone(tmp_path: Path) -> None:
    run = RunDir("live", base=tmp_path)  # its guard process holds it
    try:
        os.utime(run.path, (time.time() - 3600, time.time() - 3600))
        deadline = time.monotonic() + 10  # until the guard has exec'd with the path in its argv
        while not gc._holders(run.path):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert gc.collect_local(tmp_path) == []
        assert run.path.exists()
    finally:
        run.close()
    assert not run.path.exists()


def test_cli_gc_runs(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    (tmp_path / "dct-run-old").mkdir()
    os.utime(tmp_path / "dct-run-old", (time.time() - 3600, time.time() - 3600))
    out = subprocess.run([sys.executable, "-m", "debian_cloud_tests.cli", "gc"], capture_output=True,
                         text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "removed stale run dir" in out.stdout and not (tmp_path / "dct-run-old").exists()

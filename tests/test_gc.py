"""`gc` removes run dirs whose run was killed too hard for its guard, and nothing that is live."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from debian_cloud_tests import gc
from debian_cloud_tests.errors import UnknownProviderError, UsageError
from debian_cloud_tests.provider import available
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


@pytest.mark.parametrize(("args", "code", "says"), [
    (["--provider", "nosuch"], UnknownProviderError.exit_code,
     f"gc: unknown provider 'nosuch'; installed: {', '.join(sorted(available()))}"),
    (["--provider", "qemu"], UnknownProviderError.exit_code,
     "gc: provider 'qemu' has no garbage collection (plain `debian-cloud-tests gc` reaps local run "
     f"dirs); with gc: {', '.join(n for n in sorted(available()) if n != 'qemu')}"),
    (["--provider", "vagrant", "--region", "x"], UsageError.exit_code,
     "gc: --region applies to no provider given (vagrant); drop it"),
    (["--provider", "ssh", "--project", "p"], UsageError.exit_code,
     "gc: --project applies to no provider given (ssh); drop it"),
])
def test_cli_gc_bad_provider_is_one_line_and_touches_nothing(tmp_path: Path, args: list[str], code: int,
                                                             says: str) -> None:
    """Checked before anything is removed: a stale run dir outlives the refused command."""
    stale = tmp_path / "dct-run-old"
    stale.mkdir()
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    out = subprocess.run([sys.executable, "-m", "debian_cloud_tests.cli", "gc", *args],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "TMPDIR": str(tmp_path)})
    assert out.returncode == code, out.stderr
    assert out.stderr.splitlines() == [f"debian-cloud-tests: error: {says}"] and out.stdout == ""
    assert stale.exists()


def test_each_provider_gets_only_the_scope_it_takes() -> None:
    """The options reach each collect_garbage by the name it takes them by; a required region
    (aws) is passed even when not given; what a provider does not take is never passed."""
    given = {"region": "r1", "project": "p1", "os_cloud": "c1", "subscription": "s1"}
    taken = {name: gc.scoped_kwargs(gc._collector(name), given)
             for name in ("aws", "gce", "azure", "openstack", "ssh", "vagrant")}
    assert taken == {"aws": {"region": "r1"}, "gce": {"region": "r1", "project": "p1"},
                     "azure": {"region": "r1", "subscription": "s1"},
                     "openstack": {"region": "r1", "cloud": "c1"}, "ssh": {"region": "r1"},
                     "vagrant": {}}
    assert gc.scoped_kwargs(gc._collector("aws"), {}) == {"region": None}
    assert gc.scoped_kwargs(gc._collector("openstack"), {}) == {}

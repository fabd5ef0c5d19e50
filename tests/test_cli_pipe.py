"""Output piped into a reader that stops early (`| head -1`) ends quietly: no traceback, and an
exit code (141, as for a program SIGPIPE ended) that claims neither success nor a verdict."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from debian_cloud_tests.errors import EXIT_BROKEN_PIPE, guarded

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="1" timestamp="2026-01-01T00:00:00">
<testcase classname="bvt.test_bvt" name="test_system_running" time="0.1"/>
</testsuite></testsuites>
"""


def _into_closed_pipe(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m *argv` with stdout a pipe whose reader has already gone: the first write fails."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([sys.executable, "-m", *argv], stdout=write, stderr=subprocess.PIPE,
                              text=True, cwd=cwd, timeout=120, check=False)
    finally:
        os.close(write)


def test_checks_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    proc = _into_closed_pipe(tmp_path, "debian_cloud_tests.cli", "checks")
    assert (proc.returncode, proc.stderr) == (EXIT_BROKEN_PIPE, "")


def test_checks_through_head_ends_quietly(tmp_path: Path) -> None:
    """The reader takes one line and closes, as `head -1` does, however far the writer has got."""
    proc = subprocess.Popen([sys.executable, "-m", "debian_cloud_tests.cli", "checks"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    rc = proc.wait(timeout=120)
    assert first.split()[:2] == ["ID", "APPLIES"]
    assert err == "" and rc in (0, EXIT_BROKEN_PIPE), (rc, err)


def test_the_gate_into_a_closed_pipe_is_no_verdict(tmp_path: Path) -> None:
    """Neither publish (0) nor hold (1), and not reported as a crash of the gate."""
    (tmp_path / "r.xml").write_text(JUNIT)
    for argv in (("debian_cloud_tests.cli", "gate", "r.xml"), ("debian_cloud_tests.gate", "r.xml")):
        proc = _into_closed_pipe(tmp_path, *argv)
        assert (proc.returncode, proc.stderr) == (EXIT_BROKEN_PIPE, ""), argv


def test_a_broken_pipe_elsewhere_is_still_an_error() -> None:
    """A socket or another pipe failing is not our reader going away: it is not swallowed."""
    def command() -> int:
        raise BrokenPipeError(32, "Broken pipe (a peer)")

    with pytest.raises(BrokenPipeError):
        guarded(command)

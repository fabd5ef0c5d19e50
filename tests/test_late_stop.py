"""A stop that lands after pytest has settled a run's exit status still ends it as interrupted.

Each case is a real process: it installs the run's handlers, settles an exit status as the
plugin does at the end of a session, is then signalled, and exits as a finished run would.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import ctrl_c_at_default

PROGRAM = """
import os, signal, sys
from debian_cloud_tests import interrupts
interrupts.install()
interrupts.record_exit_status({status})
try:
    os.kill(os.getpid(), signal.{sig})  # lands while the summary is being printed
except KeyboardInterrupt:
    pass  # swallowed, as a late one is where nothing is left to act on it
print("summary printed", flush=True)
sys.exit({status})
"""


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_a_passing_run_stopped_at_its_end_exits_interrupted(sig: str) -> None:
    proc = subprocess.run([sys.executable, "-c", PROGRAM.format(status=0, sig=sig)],
                          capture_output=True, text=True, timeout=60, preexec_fn=ctrl_c_at_default)
    assert proc.returncode == 2, proc.stderr
    assert "summary printed" in proc.stdout and "Traceback" not in proc.stderr


def test_a_failed_run_keeps_its_own_code() -> None:
    proc = subprocess.run([sys.executable, "-c", PROGRAM.format(status=33, sig="SIGTERM")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 33, proc.stderr


def test_a_run_never_stopped_exits_as_it_decided() -> None:
    program = PROGRAM.format(status=0, sig="SIGTERM").replace("os.kill(", "0 and os.kill(")
    proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr

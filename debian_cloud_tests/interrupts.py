"""The run's stop request.

SIGINT, SIGTERM (CI cancelling a job) and SIGHUP raise KeyboardInterrupt wherever the main
thread is, and are also recorded here: Python drops an exception raised while a destructor or
a weakref callback runs ("Exception ignored in …"), and a run whose interrupt was dropped would
boot on to its timeout.  The run's long waits call :func:`check` at every poll, so a dropped
interrupt stops the run one poll later, and a launch waiting in another thread stops as well.

A stop that lands after pytest has decided the run's exit status (its summary printed) still
ends the run as interrupted, at exit; from then on a signal takes its default course, since no
Python code is left to handle it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
from types import FrameType

_requested = threading.Event()
_signal: list[int] = []  # the signal that asked the run to stop, if one did
_exit_status: list[int] = []  # the run's exit status, once pytest has decided it
_at_exit_registered = threading.Event()


def _stop(signum: int, frame: FrameType | None) -> None:
    _signal[:] = _signal or [signum]
    _requested.set()
    raise KeyboardInterrupt(f"signal {signum}")


def install() -> None:
    """Handle SIGTERM and SIGHUP like Ctrl-C, and Ctrl-C itself unless it is ignored (a run
    started in the background by a shell, or under nohup, keeps ignoring it)."""
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _stop)
    if not _at_exit_registered.is_set():
        _at_exit_registered.set()
        atexit.register(_at_exit)


def record_exit_status(status: int) -> None:
    """The exit status pytest settled on: a stop after it changes a passing one only."""
    _exit_status[:] = [int(status)]


def _at_exit() -> None:
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    if signal.getsignal(signal.SIGINT) is _stop:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    if _requested.is_set() and _exit_status[-1:] in ([], [0]):
        # too late for pytest to record it: a cancelled run must not read as a passing one
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(2)


def requested() -> bool:
    return _requested.is_set()


def signal_name() -> str:
    """The name of the first signal that asked the run to stop ("" if none did)."""
    return signal.Signals(_signal[0]).name if _signal else ""


def check() -> None:
    """Raise KeyboardInterrupt if the run was asked to stop (for waits, not for clean-up)."""
    if _requested.is_set():
        raise KeyboardInterrupt("the run was interrupted")

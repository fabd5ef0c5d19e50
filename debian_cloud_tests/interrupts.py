"""The run's stop request.

SIGINT, SIGTERM (CI cancelling a job) and SIGHUP raise KeyboardInterrupt wherever the main
thread is, and are also recorded here: Python drops an exception raised while a destructor or
a weakref callback runs ("Exception ignored in …"), and a run whose interrupt was dropped would
boot on to its timeout.  The run's long waits call :func:`check` at every poll, so a dropped
interrupt stops the run one poll later, and a launch waiting in another thread stops as well.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

_requested = threading.Event()


def _stop(signum: int, frame: FrameType | None) -> None:
    _requested.set()
    raise KeyboardInterrupt(f"signal {signum}")


def install() -> None:
    """Handle SIGTERM and SIGHUP like Ctrl-C, and Ctrl-C itself unless it is ignored (a run
    started in the background by a shell, or under nohup, keeps ignoring it)."""
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _stop)


def requested() -> bool:
    return _requested.is_set()


def check() -> None:
    """Raise KeyboardInterrupt if the run was asked to stop (for waits, not for clean-up)."""
    if _requested.is_set():
        raise KeyboardInterrupt("the run was interrupted")

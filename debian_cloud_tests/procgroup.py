"""Commands that start a tree of processes (a bootstrap, a build): run in a process group of
their own, and stopped as a whole when the run is interrupted, so that nothing they started
(apt, dpkg, a chroot's mounts) lives on or writes after the caller cleans up."""

from __future__ import annotations

import os
import signal
import subprocess


def stop(proc: subprocess.Popen[bytes] | subprocess.Popen[str], term_wait: float = 15.0) -> None:
    """Ask *proc*'s process group to stop (SIGTERM: it cleans up), then kill what is left."""
    for sig, wait in ((signal.SIGTERM, term_wait), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run(cmd: list[str], term_wait: float = 15.0) -> subprocess.CompletedProcess[str]:
    """*cmd* in a session of its own, output captured; on any exception (Ctrl-C, SIGTERM turned
    into one) its whole group is stopped and waited for before the exception goes on."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate()
    except BaseException:
        stop(proc, term_wait)
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)

"""The private directory of one run, and the guard that removes it whatever kills the run.

Keys, overlays, seeds, sockets and console logs live in one 0700 directory.  A guard process,
started in its own session so Ctrl-C on the terminal does not reach it, holds the read end of a
pipe whose write end only this process holds: when this process ends, however it ends (even
SIGKILL), the guard reads EOF, kills the processes registered in the run dir, removes what a
cloud provider recorded there (:func:`record_cloud`) and removes the directory.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

PIDS_FILE = "pids"
CLOUD_FILE = "cloud.json"
PREFIX = "dct-run-"


def new_run_id() -> str:
    """A short id legal in every cloud's names and tags (lowercase, digits, dashes)."""
    return time.strftime("%Y%m%d%H%M%S") + "-" + uuid.uuid4().hex[:6]


class RunDir:
    """A 0700 temporary directory with a guard; use as a context manager or call close()."""

    def __init__(self, run_id: str, base: Path | None = None) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{run_id}-", dir=base))
        os.chmod(self.path, 0o700)
        self._guard = _start_guard(self.path)

    def register_pid(self, pid: int) -> None:
        register_pid(self.path, pid)

    def close(self) -> None:
        """Kill registered processes, remove the directory, and let the guard go (the machine
        was destroyed already: what its cloud resources could not be, gc removes on expiry)."""
        reap(self.path, cloud=False)
        if self._guard is not None and self._guard.stdin is not None:
            self._guard.stdin.close()
            try:
                self._guard.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._guard.kill()
            self._guard = None

    def detach(self) -> None:
        """Keep the directory and its processes (``--keep-instance``): the guard leaves them be."""
        if self._guard is not None and self._guard.stdin is not None:
            self._guard.stdin.write(b"keep\n")
            self._guard.stdin.close()
            self._guard.wait(timeout=5)
            self._guard = None

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def register_pid(path: Path, pid: int) -> None:
    """Record a child process (QEMU) for the guard to kill if we die without cleaning up."""
    with (path / PIDS_FILE).open("a") as fh:
        fh.write(f"{pid}\n")


def record_cloud(path: Path, provider: str, **where: str | None) -> None:
    """Say where this run creates cloud resources, before it creates any, so that a run killed
    half-way (SIGKILL included) has them removed by its guard or by gc, not hours later on expiry.

    *where* is passed to the provider's ``gc.collect_run`` (e.g. region and run id).
    """
    (path / CLOUD_FILE).write_text(json.dumps({"provider": provider, **where}))


def _collect_cloud(path: Path) -> None:
    """Remove the cloud resources recorded in the run dir; never raises (gc's expiry is the
    fallback)."""
    try:
        record = json.loads((path / CLOUD_FILE).read_text())
    except (OSError, ValueError):
        return
    try:
        name = record.pop("provider")
        importlib.import_module(f"debian_cloud_tests.providers.{name}.gc").collect_run(**record)
    except Exception as exc:
        print(f"debian-cloud-tests: {path.name}: removing cloud resources failed: {exc}", file=sys.stderr)


def _start_guard(path: Path) -> subprocess.Popen[bytes] | None:
    try:
        return subprocess.Popen([sys.executable, "-m", "debian_cloud_tests.rundir", str(path)],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError:
        return None


def _is_ours(pid: int, path: Path) -> bool:
    """Guard against pid reuse: the process must mention our run dir on its command line."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return str(path).encode() in cmdline


def reap(path: Path, cloud: bool = True) -> None:
    """Kill what the run dir registered, remove the cloud resources it recorded (*cloud*) and the
    directory; idempotent, never raises."""
    try:
        pids = [int(p) for p in (path / PIDS_FILE).read_text().split()]
    except (OSError, ValueError):
        pids = []
    for pid in pids:
        if _is_ours(pid, path):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while any(_is_ours(p, path) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    if cloud:
        _collect_cloud(path)
    shutil.rmtree(path, ignore_errors=True)


def _guard_main(path: Path) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    received = b""
    while chunk := sys.stdin.buffer.read(4096):
        received += chunk
    if b"keep" not in received:
        reap(path)


if __name__ == "__main__":
    _guard_main(Path(sys.argv[1]))

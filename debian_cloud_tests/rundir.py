"""The private directory of one run, and the guard that removes it whatever kills the run.

Keys, overlays, seeds, sockets and console logs live in one 0700 directory.  A guard process,
started in its own session so Ctrl-C on the terminal does not reach it, holds the read end of a
pipe whose write end only this process holds: when this process ends, however it ends (even
SIGKILL), the guard reads EOF, kills the processes registered in the run dir, removes what a
cloud provider recorded there (:func:`record_cloud`) and removes the directory.

What a run dir holds is acted on only when it is unambiguous: a process is killed only if it is
the caller's and names the run dir exactly (not a longer path that starts with it), and a cloud
record only if its run id is one :func:`new_run_id` makes (a cloud filter takes ``*`` and ``?``
as wildcards).  When its cloud resources cannot be removed, the directory and its record stay,
for ``gc`` to retry.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
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
#: present in a run dir kept by ``--keep-instance``: gc leaves it (and its machine) alone
KEPT_FILE = "kept"
PREFIX = "dct-run-"
#: what new_run_id makes, and nothing else (ASCII only: no wildcard, no other digit)
RUN_ID = re.compile(r"[0-9]{14}-[0-9a-f]{6}")
#: a provider's name in a cloud record: a module name under debian_cloud_tests.providers
_PROVIDER = re.compile(r"[a-z][a-z0-9_]{0,31}")


def new_run_id() -> str:
    """A short id legal in every cloud's names and tags (lowercase, digits, dashes)."""
    return time.strftime("%Y%m%d%H%M%S") + "-" + uuid.uuid4().hex[:6]


def is_run_id(value: object) -> bool:
    """Whether *value* is exactly a run id :func:`new_run_id` could have made."""
    return isinstance(value, str) and RUN_ID.fullmatch(value) is not None


def require_run_id(provider: str, run_id: object) -> None:
    """Refuse, before any request, a run id :func:`new_run_id` could not have made: it goes into
    cloud filters, where ``*`` and ``?`` are wildcards naming every run's resources.

    Raises:
        UsageError: it is not one.
    """
    if not is_run_id(run_id):
        from debian_cloud_tests.errors import UsageError  # the guard imports this module alone

        raise UsageError(f"{provider}: run id {run_id!r} is not one this tool makes "
                         "(YYYYMMDDhhmmss-xxxxxx); nothing was removed")


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

    def hand_to_guard(self) -> None:
        """The machine could not be destroyed: the guard retries now (it kills what is registered
        and removes what the provider recorded), and if that fails too the directory and its
        record stay for ``gc`` to retry."""
        if self._guard is None or self._guard.stdin is None:
            reap(self.path)  # no guard: retry here, as it would
            return
        self._guard.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):  # a slow cloud: it goes on alone
            self._guard.wait(timeout=5)

    def detach(self, access: str = "") -> None:
        """Keep the directory and its processes (``--keep-instance``): the guard leaves them be,
        and the run dir says so (with *access*, how to reach and remove the machine) for gc."""
        (self.path / KEPT_FILE).write_text(f"kept by --keep-instance\n{access}\n")
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


def _read_record(path: Path) -> tuple[dict[str, str | None] | None, str]:
    """The cloud record of run dir *path* (None without one), or why it is refused."""
    try:
        text = (path / CLOUD_FILE).read_text()
    except FileNotFoundError:
        return None, ""
    except OSError as exc:
        return None, f"the cloud record cannot be read ({exc.strerror})"
    try:
        record = json.loads(text)
    except ValueError:
        return None, "the cloud record is not JSON"
    if not isinstance(record, dict) or not all(
            isinstance(k, str) and k.isidentifier() and (v is None or isinstance(v, str))
            for k, v in record.items()):
        return None, "the cloud record is not a mapping of names to strings"
    if not isinstance(record.get("provider"), str) or not _PROVIDER.fullmatch(record["provider"]):
        return None, f"the cloud record names no provider ({record.get('provider')!r})"
    if "run_id" in record and not is_run_id(record["run_id"]):
        return None, (f"run id {record['run_id']!r} in the cloud record is not one this tool makes "
                      "(YYYYMMDDhhmmss-xxxxxx)")
    return record, ""


def _collect_cloud(path: Path, record: dict[str, str | None]) -> bool:
    """Remove the cloud resources *record* names; never raises (gc's expiry is the fallback).

    Returns:
        Whether they are gone: if not, the run dir and its record stay for gc to retry.
    """
    from .gc import gc_module_name  # gc reads run dirs: imported here, not at the top

    where = dict(record)
    name = where.pop("provider")
    try:
        module = gc_module_name(str(name))
        if module is None:
            raise LookupError(f"provider {name!r} has no gc module")
        importlib.import_module(module).collect_run(**where)
    except Exception as exc:
        print(f"debian-cloud-tests: {path.name}: removing cloud resources failed ({exc}); the "
              f"run dir {path} is kept for `debian-cloud-tests gc` to retry", file=sys.stderr)
        return False
    return True


def _start_guard(path: Path) -> subprocess.Popen[bytes] | None:
    try:
        return subprocess.Popen([sys.executable, "-m", "debian_cloud_tests.rundir", str(path)],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError:
        return None


def mentions(cmdline: bytes, path: Path) -> bool:
    """Whether a NUL-separated *cmdline* names *path* exactly: as an argument, as the start of a
    path in it, or as a value (``file=PATH/disk.qcow2``), never as the start of a longer name
    (``/tmp/dct-run-a`` is not in ``/tmp/dct-run-ab``)."""
    exact = re.escape(os.fsencode(path))
    return re.search(rb"(?:\A|[\0=,:])" + exact + rb"(?:\Z|[\0/,])", cmdline) is not None


def _is_ours(pid: int, path: Path) -> bool:
    """Guard against pid reuse and others' processes: the process must be the caller's and name
    the run dir exactly on its command line."""
    proc = Path(f"/proc/{pid}")
    try:
        if proc.stat().st_uid != os.geteuid():
            return False
        cmdline = (proc / "cmdline").read_bytes()
    except OSError:
        return False
    return mentions(cmdline, path)


def reap(path: Path, cloud: bool = True) -> bool:
    """Kill what the run dir registered, remove the cloud resources it recorded (*cloud*) and the
    directory; idempotent, never raises.

    A cloud record that is refused (a run id not made here) stops it before anything is killed or
    removed; one whose resources could not be removed keeps the directory.  Either way one line
    says so on stderr.

    Returns:
        Whether the directory was removed.
    """
    record: dict[str, str | None] | None = None
    if cloud:
        record, refused = _read_record(path)
        if refused:
            print(f"debian-cloud-tests: {path.name}: {refused}; nothing was removed, the run dir "
                  f"{path} is kept", file=sys.stderr)
            return False
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
    if record is not None and not _collect_cloud(path, record):
        return False
    shutil.rmtree(path, ignore_errors=True)
    return True


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

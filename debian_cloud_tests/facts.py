"""Batched facts from the guest: every probe of every collected suite in a few SSH round trips.

Under TCG one SSH command costs ~0.1 s and a `cloud-init …` command ~3 s, so checks do not run
commands one by one: each suite module declares the probes it needs (``PROBES``), the plugin
gathers them, and they run as one shell script as the user, one under sudo, and the slow ones in
parallel channels.  A check then reads ``facts["name"]``.  A probe that fails (command missing,
file unreadable, sudo broken) is data for the check to fail on, never an error of the framework.
"""

from __future__ import annotations

import io
import shlex
import tarfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import paramiko

CHANNELS_PER_SHELL = 2


@dataclass(frozen=True)
class Probe:
    """A named shell command whose output checks read; *root* runs it under `sudo -n`."""

    name: str
    command: str
    root: bool = False
    slow: bool = False  # seconds, not tenths: run in its own channel, in parallel


@dataclass(frozen=True)
class Output:
    rc: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def lines(self) -> list[str]:
        return [ln for ln in self.stdout.splitlines() if ln.strip()]

    def why(self) -> str:
        """A short reason for a failed probe, for check messages."""
        return (self.stderr.strip() or self.stdout.strip() or f"exit status {self.rc}")[:300]


class Facts:
    """Probe outputs by name; gathered once per machine."""

    def __init__(self, outputs: dict[str, Output]) -> None:
        self._outputs = outputs

    def __getitem__(self, name: str) -> Output:
        try:
            return self._outputs[name]
        except KeyError:
            raise KeyError(f"probe {name!r} was not declared in any collected suite's PROBES") from None

    def __contains__(self, name: str) -> bool:
        return name in self._outputs


def _script(probes: Iterable[Probe]) -> str:
    # Each probe writes its output, errors and status to files in one temp dir, sent back as one
    # tar stream: a probe costs its own commands and one fork (under TCG every exec is felt).
    lines = [
        # Commands like sysctl and sshd live in sbin, which a user's PATH may lack.
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH",
        "dct_d=$(mktemp -d 2>/dev/null || mktemp -d -p /dev/shm) || exit 97",
        "dct_probe() {",
        '  ( eval "$2" ) </dev/null >"$dct_d/$1.out" 2>"$dct_d/$1.err"; echo $? >"$dct_d/$1.rc"',
        "}",
    ]
    for probe in probes:
        lines.append(f"dct_probe {shlex.quote(probe.name)} {shlex.quote(probe.command)}")
    lines.append('tar -C "$dct_d" -cf - .; dct_rc=$?; rm -rf "$dct_d"; exit $dct_rc')
    return "\n".join(lines) + "\n"


def _parse(stream: bytes) -> dict[str, Output]:
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(stream), mode="r:") as tar:
            for member in tar.getmembers():
                data = tar.extractfile(member) if member.isfile() else None
                if data is not None:
                    files[member.name.removeprefix("./")] = data.read()
    except tarfile.TarError:
        return {}
    outputs = {}
    for name in files:
        if not name.endswith(".rc"):
            continue
        probe = name.removesuffix(".rc")
        try:
            rc = int(files[name].strip() or b"-1")
        except ValueError:
            continue
        outputs[probe] = Output(rc, files.get(f"{probe}.out", b"").decode(errors="replace"),
                                files.get(f"{probe}.err", b"").decode(errors="replace"))
    return outputs


def _exec(client: paramiko.SSHClient, command: str, stdin: str, timeout: float) -> tuple[int, bytes, str]:
    transport = client.get_transport()
    assert transport is not None
    chan = transport.open_session(timeout=30)
    chan.settimeout(timeout)
    chan.exec_command(command)
    chan.sendall(stdin.encode())
    chan.shutdown_write()
    out = chan.makefile("rb").read()
    err = chan.makefile_stderr("rb").read().decode(errors="replace")
    return chan.recv_exit_status(), out, err


def gather(client: paramiko.SSHClient, probes: Iterable[Probe], timeout: float = 300) -> Facts:
    """Run all *probes*: user batch, root batch, and each slow probe, concurrently."""
    unique = {p.name: p for p in probes}
    groups: list[tuple[str, list[Probe]]] = []
    for shell, root in (("sh -s", False), ("sudo -n sh -s", True)):
        batch = [p for p in unique.values() if p.root == root and not p.slow]
        # Two channels per shell: the guest has at least two vCPUs, and a batch is CPU-bound.
        groups += [(shell, batch[i::CHANNELS_PER_SHELL]) for i in range(CHANNELS_PER_SHELL)]
    groups += [("sudo -n sh -s" if p.root else "sh -s", [p]) for p in unique.values() if p.slow]
    outputs: dict[str, Output] = {}
    lock = threading.Lock()

    def run(shell: str, batch: list[Probe]) -> None:
        if not batch:
            return
        try:
            _, out, err = _exec(client, shell, _script(batch), timeout)
            got = _parse(out)
        except (paramiko.SSHException, OSError, TimeoutError) as exc:
            err, got = f"SSH failure: {exc}", {}
        for probe in batch:
            # -1: the probe never ran (distinct from any status the command itself returns)
            result = got.get(probe.name) or Output(
                -1, "", f"could not run{' under sudo' if probe.root else ''}: "
                f"{err.strip()[:200] or 'no output'}")
            with lock:
                outputs[probe.name] = result

    threads = [threading.Thread(target=run, args=group) for group in groups]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Facts(outputs)


class PendingFacts:
    """A :func:`gather` started as soon as the machine is ready, so the probes run while the
    first checks (which use the connection directly) run too; :meth:`result` waits for it."""

    def __init__(self, client: paramiko.SSHClient, probes: Iterable[Probe]) -> None:
        self._facts: Facts | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(client, list(probes)),
                                        daemon=True, name="facts")
        self._thread.start()

    def _run(self, client: paramiko.SSHClient, probes: list[Probe]) -> None:
        try:
            self._facts = gather(client, probes)
        except BaseException as exc:  # handed to the thread that asks for the result
            self._error = exc

    def result(self) -> Facts:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._facts is not None
        return self._facts

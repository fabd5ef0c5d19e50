"""Batched facts from the guest: every probe of every collected suite in a few SSH round trips.

Under TCG one SSH command costs ~0.1 s and a `cloud-init …` command ~3 s, so checks do not run
commands one by one: each suite module declares the probes it needs (``PROBES``), the plugin
gathers them, and they run as one shell script as the user, one under sudo, and the slow ones in
parallel channels, started as soon as the machine is ready.  A check then reads ``facts["name"]``,
waiting only for the batch that runs that probe.  A probe that fails (command missing,
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
    """Probe outputs by name; gathered once per machine.

    The gather runs in threads started when the machine is ready: reading a probe waits only
    for the batch that runs it, so checks start while slow probes (apt-get update) still run.
    """

    def __init__(self, outputs: dict[str, Output] | None = None) -> None:
        self._outputs = dict(outputs or {})
        self._pending: dict[str, threading.Event] = {}
        self._threads: list[threading.Thread] = []

    def __getitem__(self, name: str) -> Output:
        event = self._pending.get(name)
        if event is not None:
            event.wait()
        try:
            return self._outputs[name]
        except KeyError:
            raise KeyError(f"probe {name!r} was not declared in any collected suite's PROBES") from None

    def __contains__(self, name: str) -> bool:
        return name in self._outputs or name in self._pending

    def wait(self) -> Facts:
        """Every probe done: before anything changes the machine they describe (a reboot)."""
        for thread in self._threads:
            thread.join()
        return self

    def _expect(self, names: Iterable[str]) -> None:
        """Probes whose readers must wait until they are delivered."""
        self._pending.update((name, threading.Event()) for name in names)

    def _deliver(self, name: str, output: Output) -> None:
        self._outputs[name] = output
        self._pending[name].set()

    def _run_in_background(self, threads: list[threading.Thread]) -> None:
        self._threads = threads
        for thread in threads:
            thread.start()


def _script(probes: Iterable[Probe]) -> str:
    # Each probe writes its output, errors and status to files in one temp dir, sent back as one
    # tar stream: a probe costs its own commands and one fork (under TCG every exec is felt).
    lines = [
        # Commands like sysctl and sshd live in sbin, which a user's PATH may lack.
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH",
        # tmpfs first: a probe writes three small files, cheaper in memory than through a journal
        "dct_d=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d) || exit 97",
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
    if transport is None or not transport.is_active():
        raise paramiko.SSHException("the connection is closed")
    chan = transport.open_session(timeout=30)
    chan.settimeout(timeout)
    chan.exec_command(command)
    chan.sendall(stdin.encode())
    chan.shutdown_write()
    out = chan.makefile("rb").read()
    err = chan.makefile_stderr("rb").read().decode(errors="replace")
    return chan.recv_exit_status(), out, err


def start(client: paramiko.SSHClient, probes: Iterable[Probe], timeout: float = 300) -> Facts:
    """Start all *probes*: user batch, root batch, and each slow probe, concurrently."""
    unique = {p.name: p for p in probes}
    groups: list[tuple[str, list[Probe]]] = []
    for shell, root in (("sh -s", False), ("sudo -n sh -s", True)):
        batch = [p for p in unique.values() if p.root == root and not p.slow]
        # Two channels per shell: the guest has at least two vCPUs, and a batch is CPU-bound.
        groups += [(shell, batch[i::CHANNELS_PER_SHELL]) for i in range(CHANNELS_PER_SHELL)]
    groups += [("sudo -n sh -s" if p.root else "sh -s", [p]) for p in unique.values() if p.slow]
    facts = Facts()
    facts._expect(unique)

    def run(shell: str, batch: list[Probe]) -> None:
        got: dict[str, Output] = {}
        err = "no output"
        try:
            _, out, err = _exec(client, shell, _script(batch), timeout)
            got = _parse(out)
        except (paramiko.SSHException, OSError, TimeoutError) as exc:
            err = f"SSH failure: {exc}"
        except BaseException as exc:  # never leave a check waiting on a probe that cannot come
            err = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            for probe in batch:
                # -1: the probe never ran (distinct from any status the command itself returns)
                facts._deliver(probe.name, got.get(probe.name) or Output(
                    -1, "", f"could not run{' under sudo' if probe.root else ''}: "
                    f"{err.strip()[:200] or 'no output'}"))

    facts._run_in_background([threading.Thread(target=run, args=group, daemon=True, name="facts")
                              for group in groups if group[1]])
    return facts


def gather(client: paramiko.SSHClient, probes: Iterable[Probe], timeout: float = 300) -> Facts:
    """Run all *probes* and wait for every one."""
    return start(client, probes, timeout).wait()

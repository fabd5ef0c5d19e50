"""Batched facts from the guest: every probe of every collected suite in a few SSH round trips.

Under TCG one SSH command costs ~0.1 s and a `cloud-init …` command ~3 s, so checks do not run
commands one by one: each suite module declares the probes it needs (``PROBES``), the plugin
gathers them, and they run in two shells started as soon as the machine is ready: one as the user,
one under sudo (one sudo: each costs the guest a PAM stack), each running its slow probes and two
halves of its quick ones as parallel jobs that send their results back as each finishes.  A check
then reads ``facts["name"]``, waiting only for the batch that runs that probe.  A probe that fails
(command missing, file unreadable, sudo broken) is data for the check to fail on, never an error of
the framework.
"""

from __future__ import annotations

import io
import re
import shlex
import tarfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import paramiko

JOBS_PER_SHELL = 2  # quick probes run as this many parallel jobs per shell


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
    #: when the probe started and ended, in the guest's uptime seconds (None: it never ran)
    started: float | None = None
    ended: float | None = None
    #: the CPU seconds (user and system) the probe's processes used: what it costs the guest
    #: whatever else competes for its vCPUs
    cpu: float | None = None

    @property
    def seconds(self) -> float | None:
        """How long the probe took in the guest, to its clock's 10 ms."""
        if self.started is None or self.ended is None:
            return None
        return round(self.ended - self.started, 2)

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

    def timings(self) -> dict[str, tuple[float, float, float]]:
        """(start, seconds, CPU seconds) of each probe that ran, the start from the first
        probe's, once every probe is done: where the gather's time goes."""
        self.wait()
        ran = [(name, out.started, out.seconds, out.cpu) for name, out in self._outputs.items()
               if out.started is not None and out.seconds is not None]
        first = min((started for _, started, _, _ in ran), default=0.0)
        return {name: (round(started - first, 2), seconds, round(cpu or 0.0, 2))
                for name, started, seconds, cpu in sorted(ran, key=lambda row: row[1])}

    def _expect(self, names: Iterable[str]) -> None:
        """Probes whose readers must wait until they are delivered."""
        self._pending.update((name, threading.Event()) for name in names)

    def _deliver(self, name: str, output: Output) -> None:
        self._outputs[name] = output
        self._pending[name].set()

    def _delivered(self, name: str) -> bool:
        return name in self._outputs

    def _run_in_background(self, threads: list[threading.Thread]) -> None:
        self._threads = threads
        for thread in threads:
            thread.start()


def _script(batches: list[list[Probe]], boost_slow: bool = False) -> str:
    """One shell for many batches: each runs as a background job, and each is sent back as its
    own tar archive the moment it is done, so one shell (one sudo, one channel) serves quick
    and slow probes alike without a quick one waiting for a slow one.

    *boost_slow* (a root shell): slow probes run at a higher CPU priority.  They are the run's
    critical path; the quick ones fill the gaps instead of sharing the vCPUs evenly with them,
    which under TCG ends the gather about 0.8 s sooner."""
    # Each probe writes its output, errors and status to files in its batch's dir: a probe costs
    # its own commands and one fork (under TCG every exec is felt).  Finished batches announce
    # themselves on a FIFO, and the shell archives them in the order they finish; the archives
    # follow each other on stdout (tar's end-of-archive blocks between them).
    ids = " ".join(f'"$dct_d/{i}"' for i in range(len(batches)))
    lines = [
        # Commands like sysctl and sshd live in sbin, which a user's PATH may lack.
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH",
        # tmpfs first: a probe writes three small files, cheaper in memory than through a journal
        "dct_d=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d) || exit 97",
        f'mkdir {ids} && mkfifo "$dct_d/done" && exec 3<>"$dct_d/done" || {{ rm -rf "$dct_d"; exit 97; }}',
        # .rc: `times` (the CPU used so far), the status with when the probe started and ended
        # (/proc/uptime, read by the shell's own `read`), `times` again: builtins, no fork
        "dct_probe() {",
        '  times >"$dct_d/$1/$2.rc"; read dct_t0 dct_x </proc/uptime',
        '  ( eval "$3" ) 3>&- </dev/null >"$dct_d/$1/$2.out" 2>"$dct_d/$1/$2.err"',
        "  dct_s=$?; read dct_t1 dct_x </proc/uptime",
        '  { echo "$dct_s $dct_t0 $dct_t1"; times; } >>"$dct_d/$1/$2.rc"',
        "}",
    ]
    for i, batch in enumerate(batches):
        runs = "".join(f"dct_probe {i} {shlex.quote(p.name)} "
                       f"{shlex.quote(_boosted(p.command) if boost_slow and p.slow else p.command)}; "
                       for p in batch)
        lines.append(f"{{ {runs}echo {i} >&3; }} &")
    lines += [
        f"dct_n={len(batches)}; dct_rc=0",
        'while [ "$dct_n" -gt 0 ] && read dct_b <&3; do',
        '  tar -C "$dct_d/$dct_b" -cf - . || dct_rc=$?; dct_n=$((dct_n - 1))',
        "done",
        'rm -rf "$dct_d"; exit $dct_rc',
    ]
    return "\n".join(lines) + "\n"


def _boosted(command: str) -> str:
    return f"exec nice -n -15 sh -c {shlex.quote(command)}"


def _members(stream: BinaryIO) -> Iterator[tuple[str, bytes]]:
    """(name, content) of each file in a stream of tar archives, as each arrives."""
    try:
        with tarfile.open(fileobj=stream, mode="r|", ignore_zeros=True) as tar:
            for member in tar:
                data = tar.extractfile(member) if member.isfile() else None
                if data is not None:
                    yield member.name.removeprefix("./"), data.read()
    except (tarfile.TarError, EOFError):
        return


def _outputs(stream: BinaryIO) -> Iterator[tuple[str, Output]]:
    """Each probe's output from its three files (.out, .err, .rc), once all three are in."""
    files: dict[str, dict[str, bytes]] = {}
    for name, data in _members(stream):
        probe, _, kind = name.rpartition(".")
        if kind not in ("out", "err", "rc"):
            continue
        parts = files.setdefault(probe, {})
        parts[kind] = data
        if len(parts) == 3:
            rc, started, ended = _status(parts["rc"])
            yield probe, Output(rc, parts["out"].decode(errors="replace"),
                                parts["err"].decode(errors="replace"), started, ended,
                                _cpu(parts["rc"]))


def _status(text: bytes) -> tuple[int, float | None, float | None]:
    """"RC START END" from the line dct_probe writes between its two `times`; a bare status is
    one without times, an unreadable one -1."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not _TIMES.search(ln)]
    fields = lines[0].split() if lines else []
    try:
        rc = int(fields[0]) if fields else -1
    except ValueError:
        return -1, None, None
    try:
        return rc, float(fields[1]), float(fields[2])
    except (IndexError, ValueError):
        return rc, None, None


_TIMES = re.compile(rb"(\d+)m([\d.]+)s")


def _cpu(text: bytes) -> float | None:
    """The children's CPU seconds between the two `times` outputs around the status line: each
    is the shell's user and system time, then its waited-for children's."""
    spent = [int(m) * 60 + float(s) for m, s in _TIMES.findall(text)]
    if len(spent) != 8:
        return None
    return max(0.0, (spent[6] + spent[7]) - (spent[2] + spent[3]))


def _parse(stream: bytes) -> dict[str, Output]:
    """Every probe in a finished stream (one or more archives)."""
    return dict(_outputs(io.BytesIO(stream)))


def _open(client: paramiko.SSHClient, command: str, stdin: str, timeout: float) -> paramiko.Channel:
    transport = client.get_transport()
    if transport is None or not transport.is_active():
        raise paramiko.SSHException("the connection is closed")
    chan = transport.open_session(timeout=30)
    chan.settimeout(timeout)
    chan.exec_command(command)
    chan.sendall(stdin.encode())
    chan.shutdown_write()
    return chan


def _batches(probes: list[Probe]) -> list[list[Probe]]:
    """Slow probes first, each alone (they start at once); the quick ones in two halves, since
    the guest has at least two vCPUs and a batch is CPU-bound."""
    quick = [p for p in probes if not p.slow]
    return [[p] for p in probes if p.slow] + [
        half for half in (quick[i::JOBS_PER_SHELL] for i in range(JOBS_PER_SHELL)) if half]


def start(client: paramiko.SSHClient, probes: Iterable[Probe], timeout: float = 300,
          sudo: str = "sudo -n") -> Facts:
    """Start all *probes*: one shell as the user and one under *sudo*, concurrently."""
    unique = {p.name: p for p in probes}
    facts = Facts()
    facts._expect(unique)

    def run(shell: str, batch: list[Probe], root: bool) -> None:
        err = "no output"
        try:
            chan = _open(client, shell, _script(_batches(batch), boost_slow=root), timeout)
            try:
                for name, output in _outputs(chan.makefile("rb")):
                    if name in unique:
                        facts._deliver(name, output)
                err = chan.makefile_stderr("rb").read().decode(errors="replace")
            finally:
                chan.close()
        except (paramiko.SSHException, OSError, TimeoutError) as exc:
            err = f"SSH failure: {exc}"
        except BaseException as exc:  # never leave a check waiting on a probe that cannot come
            err = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            for probe in batch:
                if not facts._delivered(probe.name):
                    # -1: the probe never ran (distinct from any status the command itself returns)
                    facts._deliver(probe.name, Output(
                        -1, "", f"could not run{' under sudo' if probe.root else ''}: "
                        f"{err.strip()[:200] or 'no output'}"))

    shells = [(shell, [p for p in unique.values() if p.root == root], root)
              for shell, root in (("sh -s", False), (f"{sudo} sh -s", True))]
    facts._run_in_background([threading.Thread(target=run, args=shell, daemon=True, name="facts")
                              for shell in shells if shell[1]])
    return facts


def gather(client: paramiko.SSHClient, probes: Iterable[Probe], timeout: float = 300) -> Facts:
    """Run all *probes* and wait for every one."""
    return start(client, probes, timeout).wait()

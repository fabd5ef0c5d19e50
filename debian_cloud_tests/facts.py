"""Batched facts from the guest: every probe of every collected suite in a few SSH round trips.

Under TCG one SSH command costs ~0.1 s and a `cloud-init …` command ~3 s, so checks do not run
commands one by one: each suite module declares the probes it needs (``PROBES``), the plugin
gathers them, and they run as one shell script as the user, one under sudo, and the slow ones in
parallel channels.  A check then reads ``facts["name"]``.  A probe that fails (command missing,
file unreadable, sudo broken) is data for the check to fail on, never an error of the framework.
"""

from __future__ import annotations

import base64
import shlex
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
    # Output goes to temp files, so the probe's own exit status is what is reported.
    lines = [
        # Commands like sysctl and sshd live in sbin, which a user's PATH may lack.
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH",
        "dct_probe() {",
        '  _e=$(mktemp); _f=$(mktemp)',
        '  ( eval "$2" ) </dev/null >"$_f" 2>"$_e"; _rc=$?',
        '  printf \'DCT %s %s %s %s\\n\' "$1" "$_rc" "$(base64 -w0 <"$_f")" "$(base64 -w0 <"$_e")"',
        '  rm -f "$_e" "$_f"',
        "}",
    ]
    for probe in probes:
        lines.append(f"dct_probe {shlex.quote(probe.name)} {shlex.quote(probe.command)}")
    return "\n".join(lines) + "\n"


def _parse(text: str) -> dict[str, Output]:
    outputs = {}
    for line in text.splitlines():
        parts = line.split(" ")
        if len(parts) < 3 or parts[0] != "DCT":
            continue
        name, rc = parts[1], int(parts[2])
        out = base64.b64decode(parts[3]).decode(errors="replace") if len(parts) > 3 else ""
        err = base64.b64decode(parts[4]).decode(errors="replace") if len(parts) > 4 else ""
        outputs[name] = Output(rc, out, err)
    return outputs


def _exec(client: paramiko.SSHClient, command: str, stdin: str, timeout: float) -> tuple[int, str, str]:
    transport = client.get_transport()
    assert transport is not None
    chan = transport.open_session(timeout=30)
    chan.settimeout(timeout)
    chan.exec_command(command)
    chan.sendall(stdin.encode())
    chan.shutdown_write()
    out = chan.makefile("rb").read().decode(errors="replace")
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

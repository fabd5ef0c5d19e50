"""iperf3 between two guests over their peer link, brought by the run and taken away after.

Each guest gets the unpacked packages (:mod:`guesttools`) in a directory of its own under /tmp,
runs iperf3 from there with LD_LIBRARY_PATH, and the directory, the server and the addresses
the check gave the link's interfaces are removed at the end: nothing is installed, nothing is
left.  On a link of a test's own both ends bind to the link's addresses, so the traffic cannot
take another way; on a cloud's network the addresses are the instances' own and the kernel routes.
"""

from __future__ import annotations

import contextlib
import io
import shlex
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import paramiko

from .machine import LinkEnd

PORT = 5201
#: seconds measured, after one second left out (TCP's slow start)
SECONDS = 5
OMIT = 1
#: seconds the guest may take to show a hot-plugged NIC
NIC_WAIT = 30


class GuestError(RuntimeError):
    """A guest could not do its part (one line: what and why)."""


@dataclass(frozen=True)
class Side:
    """One guest's part of the measurement: its connection, its end of the link, the interface
    the check configured for it (empty: none), its iperf3 copy."""

    client: paramiko.SSHClient
    end: LinkEnd
    device: str
    workdir: str

    @property
    def bind(self) -> str:
        """iperf3's -B option: the link's own address where the check gave it one."""
        return f"-B {self.end.address}" if self.device else ""


def run(client: paramiko.SSHClient, command: str, stdin: bytes = b"",
        timeout: float = 120) -> tuple[int, str, str]:
    """*command* in the guest: its status, output and errors."""
    transport = client.get_transport()
    if transport is None or not transport.is_active():
        raise GuestError("the SSH connection to the guest is closed")
    chan = transport.open_session(timeout=30)
    try:
        chan.settimeout(timeout)
        chan.exec_command(command)
        if stdin:
            chan.sendall(stdin)
        chan.shutdown_write()
        out = chan.makefile("rb").read().decode(errors="replace")
        err = chan.makefile_stderr("rb").read().decode(errors="replace")
        return chan.recv_exit_status(), out, err
    finally:
        chan.close()


def _must(client: paramiko.SSHClient, command: str, what: str, stdin: bytes = b"",
          timeout: float = 120) -> str:
    rc, out, err = run(client, command, stdin, timeout)
    if rc != 0:
        said = (err.strip() or out.strip() or f"exit status {rc}").splitlines()
        raise GuestError(f"{what}: {said[-1][:200]}")
    return out.strip()


def bundle(tree: Path) -> bytes:
    """iperf3 and its libraries from the unpacked packages, as a gzipped tar."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(tree / "usr/bin/iperf3", arcname="iperf3")
        for lib in sorted(tree.glob("usr/lib/*/*.so*")):
            tar.add(lib, arcname=f"lib/{lib.name}")
    return buf.getvalue()


def _interface(client: paramiko.SSHClient, end: LinkEnd) -> str:
    """Find the interface with the end's MAC (hot-plugged a moment ago), give it the end's
    address and bring it up; its name."""
    mac = end.mac
    assert mac is not None
    script = (f"i=0; while [ $i -lt {NIC_WAIT * 5} ]; do "
              f"dev=$(ip -o link | awk -v m={shlex.quote(mac)} 'index($0, \"link/ether \" m) "
              "{ sub(/:$/, \"\", $2); sub(/@.*/, \"\", $2); print $2; exit }'); "
              '[ -n "$dev" ] && break; sleep 0.2; i=$((i + 1)); done; '
              f'[ -n "$dev" ] || {{ echo "no interface with MAC {mac} within {NIC_WAIT} s" >&2; exit 3; }}; '
              'sudo -n ip addr flush dev "$dev" && '
              f'sudo -n ip addr add {end.address}/{end.prefix} dev "$dev" '
              '&& sudo -n ip link set "$dev" up && echo "$dev"')
    return _must(client, script, "bring up the peer link's interface")


def _unpack(client: paramiko.SSHClient, archive: bytes) -> str:
    return _must(client, 'd=$(mktemp -d /tmp/dct-iperf3.XXXXXX) && tar -xzf - -C "$d" && echo "$d"',
                 "copy iperf3 into the guest", stdin=archive)


def _iperf3(side: Side) -> str:
    return f"env LD_LIBRARY_PATH={side.workdir}/lib {side.workdir}/iperf3"


@contextmanager
def sides(clients: tuple[paramiko.SSHClient, paramiko.SSHClient], ends: tuple[LinkEnd, LinkEnd],
          tree: Path) -> Iterator[tuple[Side, Side]]:
    """Both guests ready to measure; everything put there removed when the block ends."""
    archive = bundle(tree)
    made: list[Side] = []
    try:
        for client, end in zip(clients, ends, strict=True):
            workdir = _unpack(client, archive)
            made.append(Side(client, end, "", workdir))
            if end.mac is not None:
                made[-1] = Side(client, end, _interface(client, end), workdir)
        yield made[0], made[1]
    finally:
        for side in made:
            cleanup = (f"[ -f {side.workdir}/server.pid ] && kill $(cat {side.workdir}/server.pid) "
                       f"2>/dev/null; rm -rf {side.workdir}")
            if side.device:
                cleanup += (f"; sudo -n ip addr flush dev {side.device}; "
                            f"sudo -n ip link set {side.device} down")
            # the machine goes with the run: a check must not fail on its cleanup
            with contextlib.suppress(GuestError, paramiko.SSHException, OSError):
                run(side.client, cleanup, timeout=30)


def measure(sender: Side, receiver: Side) -> str:
    """iperf3's JSON report of *sender* sending to *receiver* for :data:`SECONDS` seconds."""
    _must(receiver.client,
          f"cd {receiver.workdir} && {{ setsid {_iperf3(receiver)} -s -1 {receiver.bind} "
          f"-p {PORT} >server.log 2>&1 </dev/null & echo $! >server.pid; }} && "
          f"i=0; until ss -ltn | grep -q ':{PORT} '; do "
          f'i=$((i + 1)); [ $i -lt 50 ] || {{ cat server.log >&2; exit 3; }}; sleep 0.2; done',
          "start the iperf3 server on the peer")
    _, out, err = run(sender.client,
                      f"{_iperf3(sender)} -c {receiver.end.address} {sender.bind} -p {PORT} "
                      f"-t {SECONDS} -O {OMIT} --connect-timeout 10000 -J",
                      timeout=SECONDS + OMIT + 60)
    return out or err

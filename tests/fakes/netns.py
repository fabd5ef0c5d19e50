"""A network and mount namespace of the test's own, whose resolver is on 127.0.0.1.

``unshare -n -m`` gives a namespace with only a loopback interface: whatever a guest or a program
in it sends to another address dies there.  Its ``/etc/resolv.conf`` (a private bind mount) says
``nameserver 127.0.0.1``, where the test runs a DNS server of its own, so QEMU's user network,
which forwards a guest's DNS queries to that nameserver, resolves names only the test knows.

A thread joins the network namespace for a while (:meth:`PrivateNamespace.network`): the sockets
it binds, the threads and the processes it starts meanwhile are in it.  A thread that must also
see the namespace's files (the one that starts QEMU) joins its mounts for good
(:meth:`PrivateNamespace.enter_mounts`).  Programs run inside with :meth:`PrivateNamespace.prefix`.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

CLONE_FS = 0x00000200
CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000

_HOLDER = """set -e
ip link set lo up
mount --bind {resolv} /etc/resolv.conf
echo ready
exec sleep infinity
"""

_libc = ctypes.CDLL(None, use_errno=True)


def unavailable() -> str | None:
    """Why such a namespace cannot be made here, or None."""
    if os.geteuid() != 0:
        return "a network and mount namespace of the test's own needs root"
    missing = [p for p in ("unshare", "nsenter", "ip", "mount") if not shutil.which(p)]
    return f"missing programs: {', '.join(missing)}" if missing else None


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _setns(path: str, kind: int) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        _check(_libc.setns(fd, kind), f"setns {path}")
    finally:
        os.close(fd)


def _die_with_us() -> None:
    """preexec_fn: the kernel kills the child when the test process dies."""
    _libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


@dataclass
class PrivateNamespace:
    """The namespace, kept alive by its holder process (``sleep`` under ``unshare``)."""

    holder: subprocess.Popen[bytes]
    net_id: str = ""  # the network namespace's identity, still known once the holder is gone

    def __post_init__(self) -> None:
        self.net_id = self.net_id or os.readlink(self._ns("net"))

    def _ns(self, kind: str) -> str:
        return f"/proc/{self.holder.pid}/ns/{kind}"

    def add_loopback_address(self, address: str) -> None:
        """*address* (an emulated cloud network's private address) on the namespace's loopback;
        one already there is kept."""
        subprocess.run([*self.prefix(), "ip", "address", "replace", f"{address}/32", "dev", "lo"],
                       check=True, timeout=30)

    def prefix(self) -> list[str]:
        """The command prefix that runs a program inside (its network and its files)."""
        return ["nsenter", "-t", str(self.holder.pid), "-n", "-m"]

    @contextmanager
    def network(self) -> Iterator[None]:
        """The calling thread is in the namespace's network until the block ends."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            _setns(self._ns("net"), CLONE_NEWNET)
            try:
                yield
            finally:
                _check(_libc.setns(own, CLONE_NEWNET), "setns back")
        finally:
            os.close(own)

    def enter_mounts(self) -> None:
        """The calling thread (one that never goes back) sees the namespace's files and network;
        its working directory stays where it was."""
        cwd = os.getcwd()
        _check(_libc.unshare(CLONE_FS), "unshare CLONE_FS")  # setns on mounts needs its own fs
        _setns(self._ns("mnt"), CLONE_NEWNS)
        _setns(self._ns("net"), CLONE_NEWNET)
        os.chdir(cwd)

    def processes(self) -> list[int]:
        """Every process in the namespace but its holder (and this one, whose main thread may be
        in it for a while)."""
        found = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit() and int(proc.name) not in (self.holder.pid, os.getpid()):
                with suppress(OSError):
                    if os.readlink(proc / "ns/net") == self.net_id:
                        found.append(int(proc.name))
        return found

    def close(self) -> None:
        """Kill whatever still runs inside, then the holder (the namespace goes with the last)."""
        for pid in self.processes():
            with suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        self.holder.kill()
        self.holder.wait()


@contextmanager
def private_namespace(root: Path) -> Iterator[PrivateNamespace]:
    """A namespace whose resolv.conf (written under *root*) names 127.0.0.1 only."""
    root.mkdir(parents=True, exist_ok=True)
    resolv = root / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    holder = subprocess.Popen(
        ["unshare", "-n", "-m", "--propagation", "private", "sh", "-c",
         _HOLDER.format(resolv=resolv)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_us)
    assert holder.stdout is not None and holder.stderr is not None
    if holder.stdout.readline().strip() != b"ready":
        holder.kill()
        holder.wait()
        raise RuntimeError(f"could not make the namespace: {holder.stderr.read().decode()[-500:]}")
    ns = PrivateNamespace(holder)
    try:
        yield ns
    finally:
        ns.close()
        deadline = time.monotonic() + 10
        while ns.processes() and time.monotonic() < deadline:
            time.sleep(0.1)

"""Wall a guest off the runner: its user network reaches the internet, never the host itself.

QEMU's user network opens the guest's connections from the host's own sockets and maps 10.0.2.2
to the host's loopback: a candidate image could reach services bound to the runner's 127.0.0.1
and, on a cloud-hosted runner, the metadata service at 169.254.169.254 and the runner's
credentials.  Walled, QEMU runs in a network namespace of its own whose only way out is
slirp4netns with the host's loopback disabled, and where link-local destinations are
prohibited.  SSH comes in through a slirp4netns forward.  What the guest sees of its network
(QEMU's DHCP, DNS, router, IPv6) is unchanged; its DNS is answered by the host's resolver, as
before, through slirp4netns.
"""

from __future__ import annotations

import json
import os
import select
import shlex
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from debian_cloud_tests.errors import MissingDependencyError, ProviderError

from .qmp import connect_unix

#: the namespace's side of slirp4netns is QEMU's own network, so that SSH forwarded in reaches
#: the guest from 10.0.2.2, its router's address, as without the wall: a guest with no default
#: route still answers it.  QEMU takes the guest's packets to 10.0.2.2 and .3 for itself, so the
#: guest never reaches slirp4netns's side.
CIDR = "10.0.2.0/24"
NAMESPACE_ADDRESS = "10.0.2.100"
RESOLVER = "10.0.2.3"
#: where QEMU forwards SSH from inside the namespace (the namespace has no other listener)
INNER_SSH_PORT = 2222
#: never reached from a walled guest: link-local holds cloud metadata services
PROHIBITED = ("169.254.0.0/16",)
#: sealed: the internet (two halves, more specific than slirp4netns's default route) and its
#: resolver; the forward's peer, 10.0.2.2, stays on the link (the host's loopback is disabled)
SEALED = ("0.0.0.0/1", "128.0.0.0/1", f"{RESOLVER}/32")
TOOLS = {"slirp4netns": "slirp4netns", "unshare": "util-linux", "ip": "iproute2", "mount": "mount",
         "umount": "mount"}
API_SOCKET = "slirp4netns.sock"
#: where a process run beside QEMU (see wrap) writes
COMPANION_LOG = "companion.log"
READY_TIMEOUT = 10.0


def check_tools() -> dict[str, str]:
    """The absolute paths of the tools a wall needs.

    Raises:
        MissingDependencyError: one is missing, named with its package.
    """
    found = {name: shutil.which(name) for name in TOOLS}
    missing = sorted({TOOLS[name] for name, path in found.items() if not path})
    if missing:
        raise MissingDependencyError(
            f"qemu: walling the guest off this host needs {', '.join(missing)}: apt-get install "
            f"{' '.join(missing)} (or give --qemu-network=open to let the guest reach this host, "
            "or isolated for no network)")
    return {name: path for name, path in found.items() if path}


def wrap(qemu_args: list[str], run_dir: Path, tools: dict[str, str],
         companion: list[str] | None = None, resolver: str | None = None,
         sealed: bool = False) -> list[str]:
    """*qemu_args* run in a new network (and mount) namespace with link-local prohibited and the
    resolver pointed at slirp4netns (or at *resolver*); the process execs into QEMU (same pid).

    *companion* starts first, inside the namespace (an emulated cloud's metadata service and
    resolver), as QEMU's child.  *sealed*: every destination but the SSH forward's peer is
    prohibited too (slirp4netns's resolver included): the guest reaches nothing, but its
    companion's names."""
    resolv = run_dir / "resolv.conf"
    resolv.write_text(f"nameserver {resolver or RESOLVER}\n")
    ip, mount, umount = (shlex.quote(tools[name]) for name in ("ip", "mount", "umount"))
    routes = " && ".join(f"{ip} route add prohibit {net}"
                         for net in (*PROHIBITED, *(SEALED if sealed else ())))
    # A resolv.conf that is itself a mount of a deleted file cannot be mounted over: unmount it
    # first (in this private mount namespace only); without one, QEMU has no resolver anyway.
    beside = f"{{ {shlex.join(companion)} >{COMPANION_LOG} 2>&1 & }} && " if companion else ""
    script = (f"{ip} link set lo up && {routes} && "
              f"{{ {umount} /etc/resolv.conf 2>/dev/null; [ ! -e /etc/resolv.conf ] || "
              f"{mount} --bind {shlex.quote(str(resolv))} /etc/resolv.conf; }} && {beside}"
              "exec \"$@\"")
    user = ["--user", "--map-root-user"] if os.geteuid() != 0 else []
    return [tools["unshare"], *user, "--net", "--mount", "--propagation", "private",
            "/bin/sh", "-c", script, "sh", *qemu_args]


class Wall:
    """The slirp4netns process that connects one QEMU's namespace to the outside.

    It ends with QEMU, however QEMU ends: its exit fd is a pipe whose only write end QEMU holds,
    so the guard or a user killing QEMU stops it too.
    """

    def __init__(self, proc: subprocess.Popen[bytes], api: Path) -> None:
        self.proc = proc
        self.api = api
        self.refusal = ""

    @classmethod
    def start(cls, qemu_pid: int, exit_read: int, run_dir: Path, tools: dict[str, str],
              preexec: Callable[[], None] | None, new_session: bool) -> Wall:
        """Attach slirp4netns to the namespace of *qemu_pid* and wait until it is configured;
        *exit_read* is the read end of QEMU's exit pipe (closed here)."""
        api = run_dir / API_SOCKET
        api.unlink(missing_ok=True)
        ready_read, ready_write = os.pipe()
        userns = ([f"--userns-path=/proc/{qemu_pid}/ns/user"] if os.geteuid() != 0 else [])
        # the API socket is named relative to the run dir: a socket path holds 108 bytes at most
        args = [tools["slirp4netns"], "--configure", "--disable-host-loopback", f"--cidr={CIDR}",
                "--mtu=65520", "--api-socket", API_SOCKET, f"--ready-fd={ready_write}",
                f"--exit-fd={exit_read}", *userns, str(qemu_pid), "tap0"]
        log = (run_dir / "slirp4netns.log").open("wb")
        try:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    pass_fds=(ready_write, exit_read), preexec_fn=preexec,
                                    start_new_session=new_session, cwd=run_dir)
        finally:
            log.close()
            os.close(ready_write)
            os.close(exit_read)
        wall = cls(proc, api)
        try:
            ready = _read_ready(ready_read, READY_TIMEOUT)
        finally:
            os.close(ready_read)
        if not ready or not api.exists():
            wall.stop()
            detail = (run_dir / "slirp4netns.log").read_text(errors="replace").strip()
            raise ProviderError(f"qemu: slirp4netns did not connect the guest's network namespace: "
                                f"{detail.splitlines()[-1] if detail else 'no output'}")
        return wall

    def forward(self, host_address: str, host_port: int) -> bool:
        """Forward *host_address*:*host_port* to QEMU's SSH forward; False if slirp4netns could
        not (the port was taken meanwhile: it does not say why), its answer in :attr:`refusal`."""
        request = {"execute": "add_hostfwd",
                   "arguments": {"proto": "tcp", "host_addr": host_address, "host_port": host_port,
                                 "guest_addr": NAMESPACE_ADDRESS, "guest_port": INNER_SSH_PORT}}
        reply = self._call(request)
        if "error" in reply:
            self.refusal = json.dumps(reply["error"])
            return False
        return True

    def _call(self, request: dict[str, object]) -> dict[str, object]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            connect_unix(sock, self.api)
            sock.sendall(json.dumps(request).encode())
            sock.shutdown(socket.SHUT_WR)
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
        try:
            reply = json.loads(data)
        except ValueError:
            raise ProviderError(f"qemu: slirp4netns answered {data[:200]!r}") from None
        return reply if isinstance(reply, dict) else {"error": reply}

    def stop(self) -> list[BaseException]:
        """Stop slirp4netns (QEMU is gone, or going: the namespace goes with it)."""
        if self.proc.poll() is not None:
            return []
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired as exc:
                return [exc]
        return []


def _read_ready(fd: int, timeout: float) -> bool:
    """Whether slirp4netns wrote its ready byte to *fd* within *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([fd], [], [], left)
        if readable:
            return os.read(fd, 1) == b"1"
    return False

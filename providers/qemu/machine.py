"""One QEMU process: start it so it dies with us, talk to it over QMP, stop it for good."""

from __future__ import annotations

import ctypes
import os
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from debian_cloud_tests import rundir
from debian_cloud_tests.datasources import emulation
from debian_cloud_tests.datasources.platforms import Datasource
from debian_cloud_tests.errors import NoFreePortError, ProviderError
from debian_cloud_tests.machine import Machine, PeerLink, PlatformFacts, SSHEndpoint

from . import netwall
from .qmp import QMP, QMPError

_PR_SET_PDEATHSIG = 1
_PORT_ATTEMPTS = 8


def _die_with_parent(parent: int) -> None:
    """preexec_fn: the kernel SIGKILLs QEMU when the process that started it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def free_port(port_range: tuple[int, int] | None, host: str = "127.0.0.1") -> int:
    """A TCP port on *host* that nothing listens on now (QEMU binds it a moment later)."""
    candidates = range(port_range[0], port_range[1] + 1) if port_range else [0] * _PORT_ATTEMPTS
    for candidate in candidates:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, candidate))
            except OSError:
                continue
            return sock.getsockname()[1]
    where = f"in {port_range[0]}-{port_range[1]} on {host}" if port_range else f"on {host}"
    raise NoFreePortError(f"no free TCP port {where} for SSH forwarding")


#: gives the command of a process to run beside QEMU, from the resolver it may ask (or None)
Companion = Callable[[str | None], list[str] | None]


def with_companion(qemu_args: list[str], companion: list[str] | None) -> list[str]:
    """*qemu_args*, with *companion* started first by a shell that then becomes QEMU (same pid):
    the companion is QEMU's child, and ends with it (it asks for that itself)."""
    if not companion:
        return qemu_args
    script = f"{{ {shlex.join(companion)} >{netwall.COMPANION_LOG} 2>&1 & }} && exec \"$@\""
    return ["/bin/sh", "-c", script, "sh", *qemu_args]


class QemuMachine(Machine):
    """A local QEMU guest with user-mode networking and SSH on a forwarded 127.0.0.1 port."""

    console_is_live = True

    def __init__(self, run_dir: Path, facts: PlatformFacts, ssh_user: str, key_file: Path,
                 injected_host_keys: list[str] | None, properties: dict[str, str]) -> None:
        self.run_dir = run_dir
        self.facts = facts
        self.console_path = run_dir / "console.log"
        self.qmp = QMP(run_dir / "qmp.sock")
        self._ssh_user = ssh_user
        self._key_file = key_file
        self._injected = injected_host_keys
        self._properties = properties
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_with: tuple[Any, ...] | None = None
        self._wall: netwall.Wall | None = None
        self.port = 0
        self.listen_host = "127.0.0.1"
        #: launched with the root port a peer link's NIC is plugged into (:mod:`.peerlink`)
        self.linkable = False
        #: bytes per second the platform lets through a peer link (None: no limit)
        self.peer_rate: float | None = None

    def start(self, base_args: list[str], port_range: tuple[int, int] | None,
              register_pid: Callable[[int], None], die_with_parent: bool = True,
              listen_host: str = "127.0.0.1", net_extra: str = "", mac: str | None = None,
              wall: bool = False, companion: Companion | None = None,
              resolve_locally: bool = False, sealed: bool = False) -> None:
        """Start QEMU, retrying with another port if the forwarded one was taken meanwhile.

        *listen_host* is where SSH is forwarded from, *net_extra* more user-mode network
        options (e.g. a guestfwd) and *mac* the NIC's address, for a platform being emulated.
        *wall* runs QEMU in a network namespace that reaches the internet but not this host
        (:mod:`.netwall`).  *companion* gives the command of a process that lives beside QEMU
        and ends with it (an emulated cloud's metadata service), given the resolver it may ask;
        *resolve_locally*: the guest's DNS queries go to that companion (walled only);
        *sealed*: the wall lets nothing out (:func:`netwall.wrap`).
        """
        self._started_with = (base_args, port_range, register_pid, die_with_parent, listen_host,
                              net_extra, mac, wall, companion, resolve_locally, sealed)
        parent = os.getpid()
        # A kept machine must outlive us; otherwise the kernel kills QEMU with us.
        preexec = (lambda: _die_with_parent(parent)) if die_with_parent else None
        self.listen_host = listen_host
        netdev = "user,id=net0" + (f",{net_extra}" if net_extra else "")
        nic = "virtio-net-pci,netdev=net0" + (f",mac={mac}" if mac else "")
        if wall:
            beside = companion(None if sealed else netwall.RESOLVER) if companion else None
            self._start_walled(base_args, netdev, nic, port_range, register_pid, preexec, beside,
                               resolve_locally, sealed)
            return
        beside = companion(None) if companion else None
        last_error = ""
        for _ in range(_PORT_ATTEMPTS):
            self.port = free_port(port_range, listen_host)
            args = with_companion([*base_args,
                                   "-netdev", f"{netdev},hostfwd=tcp:{listen_host}:{self.port}-:22",
                                   "-device", nic], beside)
            if self._spawn(args, register_pid, preexec):
                return
            last_error = self.platform_log()
            if "hostfwd" not in last_error and "host forwarding" not in last_error:
                raise ProviderError(f"QEMU exited at start: {last_error.splitlines()[-1:] or '?'}")
        raise NoFreePortError(f"could not forward a port to SSH: {last_error.splitlines()[-1:]}")

    def _start_walled(self, base_args: list[str], netdev: str, nic: str,
                      port_range: tuple[int, int] | None, register_pid: Callable[[int], None],
                      preexec: Callable[[], None] | None, companion: list[str] | None,
                      resolve_locally: bool, sealed: bool) -> None:
        tools = netwall.check_tools()
        inner = f"{netdev},hostfwd=tcp:0.0.0.0:{netwall.INNER_SSH_PORT}-:22"
        args = netwall.wrap([*base_args, "-netdev", inner, "-device", nic], self.run_dir, tools,
                            companion=companion, resolver="127.0.0.1" if resolve_locally else None,
                            sealed=sealed)
        exit_read, exit_write = os.pipe()  # QEMU holds the write end, slirp4netns watches
        try:
            started = self._spawn(args, register_pid, preexec, keep_fds=(exit_write,))
        finally:
            os.close(exit_write)  # QEMU holds the only write end now
        if not started:
            os.close(exit_read)
            raise ProviderError(f"QEMU exited at start: {self.platform_log().splitlines()[-1:] or '?'}")
        assert self._proc is not None
        self._wall = netwall.Wall.start(self._proc.pid, exit_read, self.run_dir, tools, preexec,
                                        new_session=preexec is None)
        for _ in range(_PORT_ATTEMPTS):
            self.port = free_port(port_range, self.listen_host)
            if self._wall.forward(self.listen_host, self.port):
                return
        raise NoFreePortError(f"could not forward a port to SSH on {self.listen_host}: "
                              f"slirp4netns said {self._wall.refusal}")

    def _spawn(self, args: list[str], register_pid: Callable[[int], None],
               preexec: Callable[[], None] | None, keep_fds: tuple[int, ...] = ()) -> bool:
        """Start *args* (with *keep_fds* inherited); whether QEMU came up (False: it exited, its
        reason in qemu.log)."""
        log = (self.run_dir / "qemu.log").open("wb")
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                      preexec_fn=preexec, start_new_session=preexec is None,
                                      cwd=self.run_dir, pass_fds=keep_fds)
        log.close()
        register_pid(self._proc.pid)
        return self._wait_started()

    def _wait_started(self, timeout: float = 30.0) -> bool:
        """True once the QMP socket exists (QEMU has parsed its arguments and bound the port)."""
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            if self.qmp.path.exists():
                return True
            time.sleep(0.02)
        raise ProviderError(f"QEMU did not open its QMP socket within {timeout:.0f}s")

    @property
    def ssh(self) -> SSHEndpoint:
        return SSHEndpoint(self.listen_host, self.port, self._ssh_user, self._key_file)

    def console_log(self) -> str:
        try:
            return self.console_path.read_text(errors="replace")
        except OSError:
            return ""

    def host_keys_hint(self) -> list[str] | None:
        return self._injected

    def hard_reset(self) -> None:
        try:
            self.qmp.command("system_reset")
        except QMPError as exc:
            raise ProviderError(f"hard reset failed: {exc}") from None

    def power_cycle(self) -> None:
        """Stop QEMU and start it again on the same disk, firmware variables and console (QEMU
        appends to it): a cloud's stop and start, for an emulated machine a reset does not wake."""
        if self._started_with is None:
            raise ProviderError("power cycle of a machine that was never started")
        errors = self.destroy()
        if errors:
            raise ProviderError(f"power cycle: QEMU did not stop: {errors[0]}")
        self.qmp.path.unlink(missing_ok=True)
        self.start(*self._started_with)

    def is_alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def link_to(self, other: Machine, port: int) -> PeerLink:
        """Join this guest and *other* on a network only the two share (:mod:`.peerlink`), rate
        limited as this machine's hooks said; every port is open on it."""
        from . import peerlink

        if not isinstance(other, QemuMachine) or not (self.linkable and other.linkable):
            raise NotImplementedError("these machines were not launched to be linked (their "
                                      "launch did not ask for a peer network)")
        return peerlink.QemuPeerLink(self, other, self.peer_rate)

    def register_pid(self, pid: int) -> None:
        """A process that lives beside QEMU (a peer link's relay), for the run dir's guard."""
        rundir.register_pid(self.run_dir, pid)

    @property
    def pid(self) -> int | None:
        """QEMU's process id (a new one after a power cycle); None before the first start."""
        return self._proc.pid if self._proc else None

    def provisioning_reports(self) -> list[str] | None:
        """What the guest reported to an emulated cloud that waits for it (Azure)."""
        if self.facts.datasource != Datasource.AZURE.cloud_init_name:
            return None
        try:
            lines = (self.run_dir / emulation.LOG).read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []
        return [line.split(" ", 1)[1] for line in lines if line.startswith(emulation.HEALTH)]

    def platform_log(self) -> str:
        try:
            return (self.run_dir / "qemu.log").read_text(errors="replace").strip()
        except OSError:
            return ""

    def destroy(self) -> list[BaseException]:
        errors = self._stop_qemu()
        if self._wall is not None:
            errors += self._wall.stop()
            self._wall = None
        return errors

    def _stop_qemu(self) -> list[BaseException]:
        errors: list[BaseException] = []
        if self._proc is None or self._proc.poll() is not None:
            return errors
        try:
            self.qmp.command("quit")
            self._proc.wait(timeout=5)
        except (QMPError, OSError, subprocess.TimeoutExpired):
            self._proc.kill()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired as exc:
                errors.append(exc)
        return errors

    def describe_access(self, known_hosts: Path | None = None) -> str:
        pid = self.pid or "?"
        return (f"{super().describe_access(known_hosts)}\n  console: {self.console_path}\n"
                f"  stop it: kill {pid}; rm -r {self.run_dir}")

    def properties(self) -> dict[str, str]:
        return dict(self._properties)

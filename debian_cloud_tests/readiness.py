"""Waiting until a machine is ready: verified SSH handshake, then cloud-init finished.

An open TCP port means nothing (QEMU's user networking accepts connections while the guest is
still in its firmware); ready means a completed handshake with a host key the guest announced.
Each attempt has a short timeout, and the wait reads the console between attempts, both to show
progress and to fail early, quoting the console, when the machine has died.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import paramiko

from . import console, interrupts, ssh
from .errors import BootError, SSHNotReadyError
from .machine import Machine

POLL = 0.2
ATTEMPT_TIMEOUT = 3.0
#: the least a first session may take to open, even when the boot budget is nearly spent
SESSION_TIMEOUT_MIN = 60.0

Progress = Callable[[str, float], None]


@dataclass
class Readiness:
    """What the wait learnt, recorded as JUnit properties and read by checks."""

    client: paramiko.SSHClient | None
    boot_seconds: float
    host_keys: list[str]
    login_error: str | None = None
    cloud_init_rc: int | None = None
    cloud_init_seconds: float | None = None
    keys_seconds: float | None = None  # when the host keys were first known (console or given)
    #: the host key the server presented and the handshake verified (None: login refused)
    verified_key: str | None = None


#: the line a Linux kernel prints first at every boot, on every console
KERNEL_BANNER = re.compile(r"\bLinux version \d+\.\d+")
#: kernel starts seen before ready that make a reboot loop (an image may restart once to finish)
LOOP_BOOTS = 3


def wait_for_ssh(machine: Machine, timeout: float, progress: Progress | None = None,
                 started: float | None = None) -> Readiness:
    """Wait for a verified handshake, reporting boot stages read from the console.

    Raises:
        BootError: the machine died, or never announced host keys (quotes the console).
        SSHNotReadyError: keys were announced but sshd never completed a handshake.
        HostKeyMismatchError: something answered with a key the guest did not announce.
    """
    started = time.monotonic() if started is None else started
    deadline = started + timeout
    last_error = "no attempt yet"
    keys_seconds: float | None = None
    while True:
        interrupts.check()
        log = machine.console_log()
        stage = console.boot_stage(log)
        if progress:  # every poll: a live display ticks, a plain one prints stage changes
            progress(stage, time.monotonic() - started)
        if not machine.is_alive():
            said = machine.platform_log().splitlines()
            why = f"; {machine.facts.provider} said: {said[-1][:300]}" if said else ""
            raise BootError(f"the machine stopped during boot (last stage: {stage or 'none'}){why}",
                            detail=console.tail(log))
        refused = console.secure_boot_refusal(log)
        if refused:  # nothing else will boot: say so now, not at the end of --boot-timeout
            who, line = refused
            raise BootError(f"{who} under Secure Boot ({line}): it is not signed by a key the "
                            "platform trusts; Debian's images boot through shim signed by "
                            "Microsoft's UEFI CA, then Debian's signed GRUB and kernel",
                            detail=console.tail(log))
        boots = len(KERNEL_BANNER.findall(log))
        if boots >= LOOP_BOOTS:
            raise BootError(f"the machine restarted {boots - 1} times while booting and never "
                            f"became ready (last stage: {stage or 'none'}): a reboot loop; the "
                            "console log shows what restarts it", detail=console.tail(log))
        keys = machine.host_keys_hint() or console.announced_host_keys(log)
        if keys:
            if keys_seconds is None:
                keys_seconds = time.monotonic() - started
            try:
                client = ssh.connect(machine.ssh, keys, timeout=ATTEMPT_TIMEOUT)
            except ssh.HandshakeFailed as exc:
                last_error = str(exc)
            except ssh.LoginRefused as exc:
                return Readiness(None, time.monotonic() - started, keys, login_error=str(exc),
                                 keys_seconds=keys_seconds)
            else:
                elapsed = time.monotonic() - started
                if progress:
                    progress("ssh", elapsed)
                return Readiness(client, elapsed, keys, keys_seconds=keys_seconds,
                                 verified_key=ssh.presented_key(client))
        if time.monotonic() >= deadline:
            if keys:
                raise SSHNotReadyError(
                    f"sshd never completed a handshake within {timeout:.0f}s "
                    f"(last error: {last_error})", detail=console.tail(log))
            raise BootError(
                f"no SSH host keys on the console within {timeout:.0f}s (last stage: "
                f"{stage or 'none'}); if the image has no serial console, use "
                "--host-key-source=injected", detail=console.tail(log))
        time.sleep(POLL)


def wait_for_cloud_init(ready: Readiness, timeout: float) -> None:
    """Run `cloud-init status --wait` once; its exit code is kept for the cloud-init checks.

    Raises:
        SSHNotReadyError: the login succeeded but no session opened within *timeout*.
    """
    if ready.client is None:
        return
    begin = time.monotonic()
    transport = ready.client.get_transport()
    if transport is None:
        return
    # The first session starts the user's systemd manager through PAM: seconds on a loaded guest.
    budget = max(timeout, SESSION_TIMEOUT_MIN)
    try:
        chan = transport.open_session(timeout=budget)
    except paramiko.SSHException as exc:
        raise SSHNotReadyError(f"the login succeeded but the guest opened no session within "
                               f"{budget:.0f}s: {exc}") from None
    chan.settimeout(POLL)  # short reads: a stop request is seen while cloud-init works
    chan.exec_command("cloud-init status --wait >/dev/null 2>&1; echo $?")
    deadline = begin + max(timeout, 1.0)
    out = b""
    try:
        while chunk := _recv_until(chan, deadline):
            out += chunk
        rc = int(out.strip() or b"-1")
    except (TimeoutError, ValueError, OSError):
        rc = None
    finally:
        chan.close()
    ready.cloud_init_rc = rc
    ready.cloud_init_seconds = time.monotonic() - begin


def _recv_until(chan: paramiko.Channel, deadline: float) -> bytes:
    """The channel's next bytes (b"" at its end), polling so an interrupt is not waited out.

    Raises:
        TimeoutError: nothing more came before *deadline*.
    """
    while True:
        interrupts.check()
        try:
            return bytes(chan.recv(4096))
        except TimeoutError:
            if time.monotonic() >= deadline:
                raise

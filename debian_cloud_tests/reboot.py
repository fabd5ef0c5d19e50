"""Rebooting a machine under test, softly (the guest's own `systemctl reboot`) or hard (the
platform's reset), and telling whether it came back as the same machine.

"Came back" is proven by a new boot id over a connection verified with the host keys announced
at first boot: a reboot must not change them.  A changed key is recorded, never accepted.

A platform can hang in its own reset after the guest has done its part (OVMF under TCG does, now
and then, after the kernel's "reboot: machine restart"): where the console is live, that silence is
told apart from a slow boot, the machine is reset once through the platform and, if it stays
silent, stopped and started once where the platform can; the outcome says so.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from . import console, ssh
from .errors import HostKeyMismatchError
from .lifecycle import Instance

POLL = 1.0
# Wait for the boot to finish first: units that misbehave late must have had their chance.
AFTER = ("systemctl is-system-running --wait; hostname; "
         "systemctl --failed --plain --no-legend --no-pager")
#: the kernel's last words before it hands the restart to the platform (x86, arm64)
RESTART_LINES = ("reboot: machine restart", "reboot: Restarting system")
#: how long a live console may stay silent after them before the platform counts as hung (a
#: firmware prints within seconds of a reset; a whole boot to SSH takes about a minute under TCG)
RESTART_SILENCE = 90.0
#: how long a live console may stay silent once the new boot's kernel has started: a booting
#: Debian prints something (a unit, a cloud-init stage) every few seconds even under TCG; an
#: emulated machine that stops in the middle (seen with OVMF under TCG) is reset once
STALL_SILENCE = 240.0
KERNEL_START = "Linux version "
#: how long sshd may stay silent once the new boot shows its login prompt: sshd and the gettys
#: start together (multi-user.target), so a minute later, even under TCG, sshd is not coming
SSH_AFTER_PROMPT = 60.0
BOOT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: paramiko's "no exit status": the channel closed under the command (the guest went down)
NO_EXIT_STATUS = -1


@dataclass
class RebootOutcome:
    kind: str  # "soft" or "hard"
    came_back: bool = False
    error: str | None = None
    keys_changed: bool = False
    seconds: float | None = None
    hostname_before: str = ""
    hostname_after: str | None = None
    system_state: str | None = None
    failed_units: list[str] = field(default_factory=list)
    #: why the platform had to be reset once for the guest's own restart to complete
    platform_reset: str | None = None


class RestartWatch:
    """Tells a platform hung in its reset from a guest still booting: the kernel said it
    restarts the machine (or the platform was reset: a hard reboot), and the console has printed
    nothing since."""

    def __init__(self, mark: int, silence: float = RESTART_SILENCE, reset: bool = False) -> None:
        self.mark = mark  # console length when the reboot was asked for
        self.silence = silence
        self.reset = reset  # the platform reset the machine at the mark: no restart line comes
        self._length = -1
        self._since = 0.0

    def hung(self, text: str, now: float) -> str | None:
        """Why the platform looks hung (and needs one reset), or None while the guest is busy."""
        if len(text) != self._length:
            self._length, self._since = len(text), now
        silent = now - self._since
        lines = console.clean(text[self.mark:]).rstrip().splitlines()
        restarting = bool(lines) and any(mark in lines[-1] for mark in RESTART_LINES)
        if restarting and silent >= self.silence:
            return f"the console stayed silent {silent:.0f}s after the kernel's restart"
        if self.reset and not lines and silent >= self.silence:
            return f"the console stayed silent {silent:.0f}s after the platform's reset"
        if silent >= STALL_SILENCE and KERNEL_START in text[self.mark:]:
            # the new boot began and then the emulated machine stopped printing altogether
            return f"the console stayed silent {silent:.0f}s in the middle of the new boot"
        return None

    def rearm(self, now: float) -> None:
        """Count the silence afresh from *now* (after the platform was acted on)."""
        self._since = now


class NotAnswered(Exception):
    """The guest let us in but the command got no answer: it was going down under it."""


def _answered(inst: Instance, command: str) -> str:
    """*command*'s output, or NotAnswered where the connection died under it."""
    try:
        out = inst.host.run(command)
    except ssh.CONNECTION_LOST as exc:
        raise NotAnswered(str(exc) or type(exc).__name__) from None
    if out.rc == NO_EXIT_STATUS:
        raise NotAnswered(f"the connection closed under `{command}`")
    return out.stdout


def _boot_id(inst: Instance) -> str:
    boot = _answered(inst, "cat /proc/sys/kernel/random/boot_id").strip()
    if not BOOT_ID.fullmatch(boot):
        raise NotAnswered(f"no boot id, got {boot[:80]!r}")
    return boot


def reboot(inst: Instance, hard: bool, timeout: float) -> RebootOutcome:
    """Reboot *inst* and reconnect its host to the new boot (never raises for guest trouble)."""
    outcome = RebootOutcome("hard" if hard else "soft")
    try:
        outcome.hostname_before = inst.host.run("hostname").stdout.strip()
        old_boot = _boot_id(inst)
    except Exception as exc:  # an earlier reboot left no way in: say so, do not error
        outcome.error = f"the machine cannot be reached before this reboot: {exc}"
        return outcome
    console_mark = len(console_so_far(inst))
    started = time.monotonic()
    if hard:
        inst.machine.hard_reset()
    else:
        try:
            res = inst.host.run("sudo -n systemctl reboot")
        except Exception:  # the connection dropped as the guest went down: that is the point
            res = None
        if res is not None and res.rc != 0:
            outcome.error = f"the guest refused to reboot: {(res.stderr or res.stdout).strip()[:200]}"
            return outcome
    inst.host.backend.close()
    deadline = started + timeout
    watch = (RestartWatch(console_mark, RESTART_SILENCE, reset=hard) if inst.machine.console_is_live
             else None)
    # what a hung platform gets, one at a time: a reset does not always wake it (OVMF under TCG)
    remedies = [(inst.machine.hard_reset, "the platform hung and was reset once through the provider"),
                (inst.machine.power_cycle, "again: stopped and started through the provider")]
    prompt_seen: float | None = None  # when the new boot's login prompt was first seen
    while time.monotonic() < deadline:
        time.sleep(POLL)
        text = console_so_far(inst) if watch else ""
        if watch and prompt_seen is None and _booted_to_prompt(text, console_mark):
            prompt_seen = time.monotonic()
        stopped = console.dead_end(_new_boot(text[console_mark:])) if watch else None
        if stopped:
            outcome.error = (f"the new boot stopped for good: {stopped!r}; the console since the "
                             f"reboot request ends with:\n{console.tail(text[console_mark:])}")
            return outcome
        hung = watch.hung(text, time.monotonic()) if watch else None
        if watch and hung:
            remedy, done = remedies.pop(0)
            said = (f"{hung}: {done}" if outcome.platform_reset is None
                    else f"{outcome.platform_reset}; {hung} {done}")
            try:
                remedy()
            except NotImplementedError:  # the platform cannot: wait out the timeout, claim nothing
                watch = None
                continue
            except Exception as exc:  # the platform is gone: nothing more to wait for
                outcome.platform_reset = said
                outcome.error = f"{said}, which failed: {exc}"
                return outcome
            outcome.platform_reset = said
            if remedies:
                watch.rearm(time.monotonic())
            else:
                watch = None
            continue
        try:
            inst.host.backend.replace_client(
                ssh.connect(inst.machine.ssh, inst.ready.host_keys, timeout=3))
            if _boot_id(inst) == old_boot:  # still shutting down
                continue
            seconds = time.monotonic() - started
            lines = _answered(inst, AFTER).splitlines()
        except HostKeyMismatchError as exc:
            outcome.came_back, outcome.keys_changed = True, True
            outcome.error = f"after the reboot sshd presents another host key ({exc.message[:160]})"
            return outcome
        except (ssh.HandshakeFailed, ssh.LoginRefused, NotAnswered):
            # not up yet, or sshd still let us in while the guest went down: ask again, unless
            # the new boot finished long ago without sshd
            if prompt_seen is not None and time.monotonic() - prompt_seen >= SSH_AFTER_PROMPT:
                outcome.error = (
                    f"the machine booted again (its console shows a login prompt) but sshd did not "
                    f"answer within {SSH_AFTER_PROMPT:.0f}s of it; the console since the reboot "
                    f"request ends with:\n{console.tail(text[console_mark:])}")
                return outcome
            continue
        outcome.came_back = True
        outcome.seconds = seconds
        outcome.system_state = lines[0].strip() if lines else ""
        outcome.hostname_after = lines[1].strip() if len(lines) > 1 else ""
        outcome.failed_units = [ln.split()[0] for ln in lines[2:] if ln.strip()]
        return outcome
    now = console_so_far(inst)
    since = now[console_mark:] if len(now) >= console_mark else now  # some clouds keep a window
    outcome.error = (f"the machine did not come back within {timeout:.0f}s; the console since the "
                     f"reboot request ends with:\n{console.tail(since)}")
    return outcome


def _new_boot(since: str) -> str:
    """The part of the console since the reboot request that the new boot printed: after the
    old kernel's last words where it said them (a hard reset cuts it short)."""
    ends = [since.rfind(line) for line in RESTART_LINES]
    return since[max(max(ends), 0):]


def _booted_to_prompt(text: str, mark: int) -> bool:
    """Whether the console since *mark* shows a new boot (a kernel start) that reached a login
    prompt."""
    since = text[mark:]
    start = since.rfind(KERNEL_START)
    return start >= 0 and console.boot_stage(since[start:]) == "login prompt"


def console_so_far(inst: Instance) -> str:
    """The console so far, or "" where the platform cannot give it now (it only explains)."""
    try:
        return inst.machine.console_log()
    except Exception:
        return ""

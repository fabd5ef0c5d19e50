"""Rebooting a machine under test, softly (the guest's own `systemctl reboot`) or hard (the
platform's reset), and telling whether it came back as the same machine.

"Came back" is proven by a new boot id over a connection verified with the host keys announced
at first boot: a reboot must not change them.  A changed key is recorded, never accepted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from . import console, ssh
from .errors import HostKeyMismatchError
from .lifecycle import Instance

POLL = 1.0
# Wait for the boot to finish first: units that misbehave late must have had their chance.
AFTER = ("systemctl is-system-running --wait; hostname; "
         "systemctl --failed --plain --no-legend --no-pager")


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


def _boot_id(inst: Instance) -> str:
    return inst.host.run("cat /proc/sys/kernel/random/boot_id").stdout.strip()


def reboot(inst: Instance, hard: bool, timeout: float) -> RebootOutcome:
    """Reboot *inst* and reconnect its host to the new boot (never raises for guest trouble)."""
    outcome = RebootOutcome("hard" if hard else "soft")
    outcome.hostname_before = inst.host.run("hostname").stdout.strip()
    old_boot = _boot_id(inst)
    console_mark = len(_console(inst))
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
    while time.monotonic() < deadline:
        time.sleep(POLL)
        try:
            client = ssh.connect(inst.machine.ssh, inst.ready.host_keys, timeout=3)
        except HostKeyMismatchError as exc:
            outcome.came_back, outcome.keys_changed = True, True
            outcome.error = f"after the reboot sshd presents another host key ({exc.message[:160]})"
            return outcome
        except (ssh.HandshakeFailed, ssh.LoginRefused):
            continue
        inst.host.backend.replace_client(client)
        if _boot_id(inst) == old_boot:  # still shutting down
            client.close()
            continue
        outcome.came_back = True
        outcome.seconds = time.monotonic() - started
        lines = inst.host.run(AFTER).stdout.splitlines()
        outcome.system_state = lines[0].strip() if lines else ""
        outcome.hostname_after = lines[1].strip() if len(lines) > 1 else ""
        outcome.failed_units = [ln.split()[0] for ln in lines[2:] if ln.strip()]
        return outcome
    now = _console(inst)
    since = now[console_mark:] if len(now) >= console_mark else now  # some clouds keep a window
    outcome.error = (f"the machine did not come back within {timeout:.0f}s; the console since the "
                     f"reboot request ends with:\n{console.tail(since)}")
    return outcome


def _console(inst: Instance) -> str:
    """The console so far, or "" where the platform cannot give it now (it only explains)."""
    try:
        return inst.machine.console_log()
    except Exception:
        return ""

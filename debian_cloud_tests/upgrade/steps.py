"""The upgrade a user does first on a new instance: add the run's repository (if any), `apt-get
full-upgrade`, reboot; and what the machine was before and is after, for the suite to compare.

Each step that cannot be done stops the sequence and says why (an outcome, never an exception):
a failed upgrade is not rebooted into, a machine that did not come back is not read.
"""

from __future__ import annotations

import base64
import re
import shlex
import time
from dataclasses import dataclass, field

from .. import console
from ..lifecycle import Instance
from ..reboot import RebootOutcome, console_so_far, reboot
from .source import GUEST_KEY, GUEST_LIST, UpgradeSource

#: seconds apt may take: a kernel's unpacking and initramfs under TCG take minutes
APT_TIMEOUT = 1800
#: the same machine before and after: kernel, identity, cloud-init's per-instance record
SNAPSHOT = ("uname -r; echo; cat /etc/machine-id; echo; cat /var/lib/cloud/data/instance-id; echo; "
            "linux-version list 2>/dev/null | linux-version sort 2>/dev/null | tail -n 1; echo; "
            "stat -c '%n %Y' /var/lib/cloud/instance/sem/* 2>/dev/null; echo; "
            "[ -e /run/reboot-required ] && echo reboot-required; true")
#: what keys_to_console prints once per instance: a new boot showing it re-ran per-instance modules
HOST_KEYS_BLOCK = "-----BEGIN SSH HOST KEY KEYS-----"
APT = ("env DEBIAN_FRONTEND=noninteractive timeout {timeout} apt-get -q -y "
       "-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold -o Dpkg::Use-Pty=0 ")


@dataclass(frozen=True)
class Snapshot:
    kernel: str
    machine_id: str
    instance_id: str
    newest_kernel: str
    #: cloud-init's per-instance semaphores and their mtimes
    semaphores: dict[str, str]
    reboot_required: bool

    @classmethod
    def parse(cls, text: str) -> Snapshot:
        parts = [p.strip() for p in text.split("\n\n")]
        parts += [""] * (6 - len(parts))
        sems = dict(line.rsplit(" ", 1) for line in parts[4].splitlines() if " " in line)
        return cls(parts[0], parts[1], parts[2], parts[3], sems, parts[5] == "reboot-required")


@dataclass
class UpgradeOutcome:
    source: str
    before: Snapshot | None = None
    after: Snapshot | None = None
    #: why the sequence stopped before the machine came back upgraded (None: it did)
    error: str | None = None
    #: the step that failed: "update", "upgrade", "reboot" or "" (none)
    failed_step: str = ""
    #: what apt unpacked: "package old -> new"
    unpacked: list[str] = field(default_factory=list)
    audit: str = ""
    reboot: RebootOutcome | None = None
    #: the console since the reboot was asked for
    console_after: str = ""
    #: seconds apt-get update and full-upgrade took
    apt_seconds: float | None = None

    @property
    def upgraded(self) -> bool:
        return self.failed_step not in ("update", "upgrade") and self.before is not None

    @property
    def back(self) -> bool:
        """The machine came back from the reboot, verified as the same host, and was read."""
        return self.after is not None


def run_upgrade(inst: Instance, source: UpgradeSource, repo_url: str | None,
                boot_timeout: float) -> UpgradeOutcome:
    """Upgrade *inst* from *source* (its repository at *repo_url* as the guest reaches it),
    reboot it, and read it before and after."""
    outcome = UpgradeOutcome(source.describe())
    if inst.host is None:
        outcome.error = f"cannot log in to the machine: {inst.ready.login_error}"
        return outcome
    outcome.before = _snapshot(inst)
    apt_scope = ""
    if not source.own:
        url = repo_url or source.url
        if not url:
            outcome.error, outcome.failed_step = "the platform serves no repository to this machine", "update"
            return outcome
        added = _sudo(inst, _add_repository(source, url))
        if added.rc != 0:
            outcome.error, outcome.failed_step = f"adding the repository failed: {_last(added)}", "update"
            return outcome
        # only the run's repository: the image's own may be unreachable from where it runs
        apt_scope = f"-o Dir::Etc::SourceList={GUEST_LIST} -o Dir::Etc::SourceParts=- "
    started = time.monotonic()
    update = _sudo(inst, APT.format(timeout=600) + apt_scope + "--error-on=any update 2>&1")
    if update.rc != 0:
        outcome.error, outcome.failed_step = f"apt-get update failed: {_last(update)}", "update"
        return outcome
    upgrade = _sudo(inst, APT.format(timeout=APT_TIMEOUT) + apt_scope + "full-upgrade 2>&1")
    outcome.unpacked = [_unpacked(line) for line in upgrade.stdout.splitlines()
                        if line.startswith("Unpacking ")]
    outcome.apt_seconds = round(time.monotonic() - started, 1)
    outcome.audit = _sudo(inst, "dpkg --audit 2>&1").stdout.strip()
    if upgrade.rc != 0:
        outcome.error, outcome.failed_step = (f"apt-get full-upgrade failed (exit {upgrade.rc}): "
                                              f"{_errors(upgrade)}", "upgrade")
        return outcome
    mark = len(console_so_far(inst))
    outcome.reboot = reboot(inst, hard=False, timeout=boot_timeout)
    if outcome.reboot.keys_changed:  # let the new boot finish what it prints: the evidence why
        _await_cloud_init(inst, mark)
    outcome.console_after = console_so_far(inst)[mark:]
    if not outcome.reboot.came_back or outcome.reboot.keys_changed:
        outcome.error, outcome.failed_step = outcome.reboot.error or "did not come back", "reboot"
        return outcome
    outcome.after = _snapshot(inst)
    return outcome


#: how long a machine that came back unrecognised may take to finish its boot on the console
CLOUD_INIT_PATIENCE = 180.0
CLOUD_INIT_DONE = re.compile(r"Cloud-init v\. \S+ finished at")


def _await_cloud_init(inst: Instance, mark: int) -> None:
    """Wait (bounded) until the console since *mark* shows cloud-init's final stage done."""
    deadline = time.monotonic() + CLOUD_INIT_PATIENCE
    while time.monotonic() < deadline and not CLOUD_INIT_DONE.search(console_so_far(inst)[mark:]):
        time.sleep(2)


def _add_repository(source: UpgradeSource, url: str) -> str:
    key = base64.b64encode(source.key).decode()
    script = (f"install -d -m 755 /etc/apt/keyrings && echo {key} | base64 -d >{GUEST_KEY} && "
              f"chmod 644 {GUEST_KEY} && printf %s {shlex.quote(source.list_line(url))} >{GUEST_LIST}")
    return f"sh -c {shlex.quote(script)}"


def _snapshot(inst: Instance) -> Snapshot:
    return Snapshot.parse(_sudo(inst, f"sh -c {shlex.quote(SNAPSHOT)}").stdout)


def _sudo(inst: Instance, command: str):  # type: ignore[no-untyped-def]
    return inst.host.run(f"sudo -n {command}")


def _unpacked(line: str) -> str:
    """'Unpacking linux-image-amd64 (6.12) over (6.1) ...' -> 'linux-image-amd64 6.1 -> 6.12'."""
    words = line.split()
    name, new = words[1], words[2].strip("()")
    old = words[4].strip("()") if len(words) > 4 and words[3] == "over" else "(new)"
    return f"{name} {old} -> {new}"


def _last(result, lines: int = 3) -> str:  # type: ignore[no-untyped-def]
    text = (result.stdout or "") + (result.stderr or "")
    kept = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return " | ".join(kept[-lines:]) or f"exit status {result.rc}"


def _errors(result) -> str:  # type: ignore[no-untyped-def]
    """apt's and dpkg's error lines and what the failing script said before them, else the last
    lines: an upgrade's output runs to thousands of lines."""
    lines = [ln.strip() for ln in ((result.stdout or "") + (result.stderr or "")).splitlines()]
    said = [ln for i, ln in enumerate(lines) if "error" in ln.lower() or ln.startswith("E:")
            or (i + 1 < len(lines) and lines[i + 1].startswith("dpkg: error"))]
    return " | ".join(said[:6]) if said else _last(result, 6)


def reran_per_instance(outcome: UpgradeOutcome) -> str | None:
    """How the new boot shows cloud-init re-ran its per-instance modules, or None."""
    before, after = outcome.before, outcome.after
    if HOST_KEYS_BLOCK in console.clean(outcome.console_after):
        return "the new boot's console shows cloud-init printing the host keys again (keys_to_console " \
               "runs once per instance)"
    if before is None or after is None:
        return None
    if before.instance_id != after.instance_id:
        return f"cloud-init's instance id changed from {before.instance_id!r} to {after.instance_id!r}"
    changed = sorted(name for name, mtime in after.semaphores.items()
                     if before.semaphores.get(name) != mtime)
    if changed:
        return f"per-instance modules ran again: {', '.join(n.rsplit('/', 1)[-1] for n in changed)}"
    return None

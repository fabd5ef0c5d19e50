"""System settings of Debian's cloud images: time sync, locale, timezone, per-instance machine-id."""

from __future__ import annotations

import re

import pytest

from debian_cloud_tests.applicability import STARTS_THE_MACHINE
from debian_cloud_tests.facts import Probe
from debian_cloud_tests.probes import BTIME
from debian_cloud_tests.systemd import show_blocks

TIME_SERVICES = ("systemd-timesyncd", "chrony", "ntpsec", "ntp", "openntpd")
#: timers Debian enables so that an instance stays patched and its disk trimmed
TIMERS = ("apt-daily.timer", "apt-daily-upgrade.timer", "fstrim.timer")
#: Debian's logrotate runs from this timer (its cron.daily job stands down under systemd)
LOGROTATE_TIMER = "logrotate.timer"
UNITS = (*(f"{s}.service" for s in TIME_SERVICES), *TIMERS, LOGROTATE_TIMER)

PROBES = [
    # one systemctl call for the time services and the timers (each exec is felt under TCG)
    Probe("unit_states", "systemctl show -p Id,ActiveState,UnitFileState " + " ".join(UNITS)),
    # Debian's file, and systemd's (localectl writes /etc/locale.conf where it is the one read)
    Probe("default_locale", "cat /etc/default/locale /etc/locale.conf 2>/dev/null; true"),
    Probe("timezone", "readlink -f /etc/localtime"),
    # swap in use, then swap the image's fstab asks for
    Probe("swap", "awk 'FILENAME == \"/proc/swaps\" && FNR > 1 {print \"active\", $1} "
          "FILENAME == \"/etc/fstab\" && $1 !~ /^#/ && $3 == \"swap\" {print \"fstab\", $1}' "
          "/proc/swaps /etc/fstab"),
    Probe("machine_id", "cat /etc/machine-id"),
    # the rules packages ship for their logs, then whether logrotate is there to apply them
    Probe("logrotate_rules", "ls -A /etc/logrotate.d 2>/dev/null | tr '\\n' ' '; echo; "
          "[ -x /usr/sbin/logrotate ] && echo installed; true"),
    Probe("dbus_machine_id", "[ -e /var/lib/dbus/machine-id ] && stat -c '%F %Y' "
          "/var/lib/dbus/machine-id; true"),
    Probe("machine_id_mtime", "stat -L -c %Y /etc/machine-id", root=True),
    BTIME,
]


def unit_states(facts) -> dict[str, dict[str, str]]:
    """Properties of UNITS as systemd reports them; no answer from systemd fails the check."""
    out = facts["unit_states"]
    if not out.ok:
        pytest.fail(f"cannot ask systemd about units: {out.why()}", pytrace=False)
    return show_blocks(out.stdout, UNITS)


def test_time_sync_active(facts) -> None:
    """A time synchronisation service is running (clouds' clocks drift without one)."""
    states = unit_states(facts)
    active = [s for s in TIME_SERVICES if states.get(f"{s}.service", {}).get("ActiveState") == "active"]
    assert active, f"none of {', '.join(TIME_SERVICES)} is active; enable systemd-timesyncd or chrony"


def test_locale_set(facts) -> None:
    """A default locale is configured (LANG in /etc/default/locale or /etc/locale.conf)."""
    text = facts["default_locale"].stdout
    assert re.search(r"^LANG=\S+", text, re.M), (
        "no LANG in /etc/default/locale or /etc/locale.conf; set LANG=C.UTF-8")


def test_timezone_utc(facts) -> None:
    """The timezone is UTC, as in every Debian cloud image (users change it per instance)."""
    zone = facts["timezone"].stdout.strip()
    assert zone.endswith(("/UTC", "/Etc/UTC", "/Universal", "/Zulu")) or zone == "" or \
        zone.endswith("/Etc/UCT"), f"/etc/localtime points to {zone}; the image must ship UTC"


def test_no_swap(facts) -> None:
    """The image brings no swap: the instance type sizes memory, and a swap file or partition
    baked in takes every instance's disk and pages its memory to it unasked."""
    out = facts["swap"]
    assert out.ok, f"cannot read /proc/swaps or /etc/fstab: {out.why()}"
    found = out.lines()
    assert not found, f"swap configured: {found}; remove it from the image and /etc/fstab"


# a file's time against this boot's says "made at first boot" only on an instance this run
# started: a running host may have rebooted since
@pytest.mark.applies(provider=STARTS_THE_MACHINE)
def test_machine_id_generated_at_first_boot(facts) -> None:
    """/etc/machine-id was created on this instance's first boot, not copied from the image."""
    machine_id = facts["machine_id"].stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{32}", machine_id), f"/etc/machine-id is not a valid id: {machine_id!r}"
    mtime = facts["machine_id_mtime"]
    assert mtime.ok and mtime.stdout.strip().isdigit(), f"cannot stat /etc/machine-id: {mtime.why()}"
    written, boot = int(mtime.stdout.strip()), int(facts["btime"].stdout.strip())
    assert written >= boot - 5, ("/etc/machine-id predates this boot: the image ships a machine-id "
                                 "every instance shares; truncate it to an empty file in the image")


@pytest.mark.applies(provider=STARTS_THE_MACHINE)  # as above
def test_no_dbus_machine_id_baked(facts) -> None:
    """The image ships no D-Bus machine id of its own: at first boot systemd copies that file into
    an empty /etc/machine-id, so every instance would share it (a symlink to /etc/machine-id, or
    a file written on this boot, is fine)."""
    out = facts["dbus_machine_id"].stdout.split()
    if not out or out[0] == "symbolic":
        return
    written, boot = int(out[-1]), int(facts["btime"].stdout.strip())
    assert written >= boot - 5, (
        "/var/lib/dbus/machine-id is a file from the image: systemd made it this instance's "
        "machine-id, and every instance's; make it a symlink to /etc/machine-id in the image")


@pytest.mark.parametrize("timer", TIMERS)
def test_timer_enabled(facts, timer: str) -> None:
    """Debian's maintenance timers are enabled (package lists, upgrades, TRIM)."""
    state = unit_states(facts).get(timer, {}).get("UnitFileState", "")
    assert state == "enabled", f"{timer} is {state or 'missing'}; `systemctl enable {timer}`"


def test_logs_rotated(facts) -> None:
    """The log files packages write are rotated: where packages ship logrotate rules
    (/etc/logrotate.d), logrotate is installed and its timer enabled, so that no log grows until
    the disk is full.  An image with no such rule has nothing to rotate (the journal caps itself)."""
    lines = facts["logrotate_rules"].stdout.splitlines()
    rules = lines[0].split() if lines else []
    if not rules:
        return
    assert "installed" in lines[1:], (
        f"packages ship logrotate rules ({', '.join(rules[:6])}) but logrotate is not installed: "
        "their logs grow for ever; install logrotate")
    state = unit_states(facts).get(LOGROTATE_TIMER, {}).get("UnitFileState", "")
    assert state == "enabled", (f"{LOGROTATE_TIMER} is {state or 'missing'}: logrotate never runs "
                                f"(Debian's cron job for it stands down under systemd); "
                                f"`systemctl enable {LOGROTATE_TIMER}`")

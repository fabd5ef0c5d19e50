"""System settings of Debian's cloud images: time sync, locale, timezone, per-instance machine-id."""

from __future__ import annotations

import re

import pytest

from debian_cloud_tests.facts import Probe

TIME_SERVICES = ("systemd-timesyncd", "chrony", "ntpsec", "ntp", "openntpd")
#: timers Debian enables so that an instance stays patched and its disk trimmed
TIMERS = ("apt-daily.timer", "apt-daily-upgrade.timer", "fstrim.timer")

PROBES = [
    Probe("time_sync_active", f"for s in {' '.join(TIME_SERVICES)}; do "
          "[ \"$(systemctl is-active $s.service 2>/dev/null)\" = active ] && echo $s; done; true"),
    Probe("default_locale", "cat /etc/default/locale"),
    Probe("timezone", "readlink -f /etc/localtime"),
    Probe("machine_id", "cat /etc/machine-id"),
    Probe("dbus_machine_id", "[ -e /var/lib/dbus/machine-id ] && stat -c '%F %Y' "
          "/var/lib/dbus/machine-id; true"),
    Probe("machine_id_mtime", "stat -L -c %Y /etc/machine-id", root=True),
    Probe("btime", "awk '/^btime/ {print $2}' /proc/stat"),
    Probe("timers_enabled", f"for t in {' '.join(TIMERS)}; do echo \"$t $(systemctl is-enabled $t "
          "2>/dev/null || true)\"; done"),
]


def test_time_sync_active(facts) -> None:
    """A time synchronisation service is running (clouds' clocks drift without one)."""
    active = facts["time_sync_active"].lines()
    assert active, f"none of {', '.join(TIME_SERVICES)} is active; enable systemd-timesyncd or chrony"


def test_locale_set(facts) -> None:
    """A default locale is configured (LANG in /etc/default/locale)."""
    text = facts["default_locale"].stdout
    assert re.search(r"^LANG=\S+", text, re.M), "no LANG in /etc/default/locale; set LANG=C.UTF-8"


def test_timezone_utc(facts) -> None:
    """The timezone is UTC, as in every Debian cloud image (users change it per instance)."""
    zone = facts["timezone"].stdout.strip()
    assert zone.endswith(("/UTC", "/Etc/UTC", "/Universal", "/Zulu")) or zone == "" or \
        zone.endswith("/Etc/UCT"), f"/etc/localtime points to {zone}; the image must ship UTC"


def test_machine_id_generated_at_first_boot(facts) -> None:
    """/etc/machine-id was created on this instance's first boot, not copied from the image."""
    machine_id = facts["machine_id"].stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{32}", machine_id), f"/etc/machine-id is not a valid id: {machine_id!r}"
    mtime = facts["machine_id_mtime"]
    assert mtime.ok and mtime.stdout.strip().isdigit(), f"cannot stat /etc/machine-id: {mtime.why()}"
    written, boot = int(mtime.stdout.strip()), int(facts["btime"].stdout.strip())
    assert written >= boot - 5, ("/etc/machine-id predates this boot: the image ships a machine-id "
                                 "every instance shares; truncate it to an empty file in the image")


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
    states = dict(line.split(" ", 1) for line in facts["timers_enabled"].lines() if " " in line)
    assert states.get(timer, "").strip() == "enabled", (
        f"{timer} is {states.get(timer, 'missing').strip() or 'missing'}; `systemctl enable {timer}`")

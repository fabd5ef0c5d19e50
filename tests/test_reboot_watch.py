"""The reboot's watch for a platform hung in its reset: only the kernel's restart line (or, in a
hard reboot, the platform's reset) followed by a silent console counts, never a guest that is
merely slow or still printing."""

from __future__ import annotations

from debian_cloud_tests.reboot import RestartWatch

BEFORE = "[   12.0] login: \n"
SHUTDOWN = ("[   49.84] systemd-shutdown[1]: Rebooting.\r\n"
            "[   49.85] ACPI: PM: Preparing to enter system sleep state S5\r\n")
RESTART = "[   49.85] reboot: machine restart\r\n"


def watch() -> RestartWatch:
    return RestartWatch(mark=len(BEFORE), silence=90)


def test_silence_after_the_restart_line_is_a_hang() -> None:
    w, text = watch(), BEFORE + SHUTDOWN + RESTART
    assert not w.hung(text, 100.0)
    assert not w.hung(text, 189.0)
    assert w.hung(text, 190.0)


def test_the_arm64_restart_line_counts_too() -> None:
    w, text = watch(), BEFORE + "[ 60.1] reboot: Restarting system\n"
    w.hung(text, 0.0)
    assert w.hung(text, 90.0)


def test_output_after_the_restart_is_a_boot_not_a_hang() -> None:
    w = watch()
    w.hung(BEFORE + SHUTDOWN + RESTART, 0.0)
    booting = BEFORE + SHUTDOWN + RESTART + "\x1b[2J\x1b[01;01HBdsDxe: loading Boot0001\r\n"
    assert not w.hung(booting, 50.0)
    assert not w.hung(booting, 500.0)  # printed after the restart: a later stall is not a reset hang


def test_silence_after_a_hard_reset_is_a_hang() -> None:
    """A hard reboot resets the platform at the mark: a firmware prints within seconds of that."""
    w = RestartWatch(mark=len(BEFORE), silence=90, reset=True)
    w.hung(BEFORE, 0.0)
    assert not w.hung(BEFORE, 89.0)
    assert "after the platform's reset" in (w.hung(BEFORE, 90.0) or "")


def test_output_after_a_hard_reset_is_a_boot_not_a_hang() -> None:
    w = RestartWatch(mark=len(BEFORE), silence=90, reset=True)
    w.hung(BEFORE, 0.0)
    booting = BEFORE + "BdsDxe: loading Boot0001\r\n"
    assert not w.hung(booting, 50.0)
    assert not w.hung(booting, 200.0)


def test_silence_without_the_restart_line_is_not_a_hang() -> None:
    w, text = watch(), BEFORE + SHUTDOWN  # still shutting down, or the kernel logs elsewhere
    w.hung(text, 0.0)
    assert not w.hung(text, 1000.0)


def test_a_restart_line_from_before_the_request_does_not_count() -> None:
    w = RestartWatch(mark=len(BEFORE + RESTART), silence=90)
    text = BEFORE + RESTART  # an earlier reboot's last words, nothing since the request
    w.hung(text, 0.0)
    assert not w.hung(text, 1000.0)


def test_the_silence_counts_from_the_last_output() -> None:
    w = watch()
    w.hung(BEFORE + SHUTDOWN, 0.0)
    w.hung(BEFORE + SHUTDOWN + RESTART, 80.0)
    assert not w.hung(BEFORE + SHUTDOWN + RESTART, 160.0)
    assert w.hung(BEFORE + SHUTDOWN + RESTART, 170.0)


def test_a_new_boot_that_stops_printing_is_a_stalled_platform() -> None:
    """The new boot's kernel started, then the emulated machine printed nothing for minutes."""
    w = watch()
    stalled = BEFORE + SHUTDOWN + RESTART + ("[    0.0] Linux version 6.1.0-28-cloud-amd64\r\n"
                                             "[   26.1] systemd[1]: Starting modprobe@fuse.service\r\n")
    assert not w.hung(stalled, 0.0)
    assert not w.hung(stalled, 239.0)
    assert "middle of the new boot" in (w.hung(stalled, 240.0) or "")


def test_a_new_boot_at_its_login_prompt_is_seen_only_after_its_kernel_start() -> None:
    """sshd is given a minute from the new boot's login prompt: the prompt must be that boot's
    (after a kernel start since the reboot request), not the old boot's."""
    from debian_cloud_tests.reboot import _booted_to_prompt

    mark = len(BEFORE)
    new_boot = "\x1b[0m[    0.000000] Linux version 6.1.0-28-cloud-amd64\r\n"
    assert not _booted_to_prompt(BEFORE, mark)  # the prompt before the request
    assert not _booted_to_prompt(BEFORE + SHUTDOWN + RESTART + new_boot, mark)  # still booting
    assert _booted_to_prompt(BEFORE + SHUTDOWN + RESTART + new_boot + "\r\ndebian login: ", mark)
    # a prompt printed again by the old boot while it goes down is not a new boot
    assert not _booted_to_prompt(BEFORE + "debian login: \r\n" + SHUTDOWN, mark)

"""Console parsing: announced host keys, boot stages, trouble patterns."""

from __future__ import annotations

from debian_cloud_tests import console, consolescan

KEYS_BLOCK = """\
\x1b[0m<14>Nov 26 06:50:46 cloud-init: #############################################################
-----BEGIN SSH HOST KEY KEYS-----\r
ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBP7e root@dct\r
ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN/PxlLKXDX0SjKi7gmZTmv5ps root@dct\r
-----END SSH HOST KEY KEYS-----\r
"""


def test_announced_keys_parsed_without_comments() -> None:
    keys = console.announced_host_keys("noise\n" + KEYS_BLOCK + "more noise")
    assert keys == ["ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBP7e",
                    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN/PxlLKXDX0SjKi7gmZTmv5ps"]


def test_last_keys_block_wins_after_reboot() -> None:
    second = KEYS_BLOCK.replace("AAAAC3NzaC1lZDI1NTE5AAAAIN/Px", "AAAAC3NzaC1lZDI1NTE5AAAAIOTHER")
    keys = console.announced_host_keys(KEYS_BLOCK + second)
    assert any("OTHER" in k for k in keys)


def test_incomplete_block_announces_nothing() -> None:
    assert console.announced_host_keys(KEYS_BLOCK.split("-----END")[0]) == []


def test_boot_stage_progresses() -> None:
    assert console.boot_stage("") == ""
    assert console.boot_stage("BdsDxe: loading Boot0001") == "firmware"
    assert console.boot_stage("BdsDxe\n[    0.000000] Linux version 6.1.0") == "kernel"
    assert console.boot_stage("[    3.1] cloud-init[300]: Cloud-init v. 22.4 running") == "cloud-init"


def test_tail_quotes_last_lines() -> None:
    text = "\n".join(f"line {i}" for i in range(20))
    assert console.tail(text, 2) == "  | line 18\n  | line 19"
    assert "printed nothing" in console.tail("")


def test_scan_finds_each_kind_of_trouble() -> None:
    lines = {
        "kernel panic": "[ 1.0] Kernel panic - not syncing: VFS: Unable to mount root fs",
        "oops": "[ 2.0] Oops: 0000 [#1] PREEMPT SMP NOPTI",
        "call trace": "[ 2.1] Call Trace:",
        "segfault": "[ 9.1] python3[512]: segfault at 0 ip 00007f5c sp 00007ffd error 4 in libc.so",
        "oom kill": "[ 9.2] Out of memory: Killed process 812 (stress)",
        "failed unit": "[FAILED] Failed to start broken.service - A broken service.",
        "emergency mode": "You are in emergency mode. After logging in, type ...",
        "soft lockup": "[ 62.1] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [kworker/0:1:57]",
        "hard lockup": "[ 70.2] NMI watchdog: Watchdog detected hard LOCKUP on cpu 1",
        "rcu stall": "[ 80.3] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
        "hung task": "[243.4] INFO: task jbd2/vda1-8:153 blocked for more than 120 seconds.",
        "watchdog timeout": "[305.5] systemd[1]: systemd-journald.service: Watchdog timeout "
                            "(limit 3min)!",
    }
    for name, line in lines.items():
        assert consolescan.scan(f"ok\n{line}\nok") == [(name, line)], name


def test_the_watchdog_patterns_leave_their_harmless_neighbours_alone() -> None:
    for line in ("[ 0.1] NMI watchdog: Enabled. Permanently consumes one hw-PMU counter.",
                 "[ 0.2] rcu: Hierarchical RCU implementation.",
                 "[ 1.0] watchdog: Delayed init of the lockup detector failed: -19",
                 "[ 2.0] systemd[1]: Using hardware watchdog 'i6300ESB timer', version 0, device "
                 "/dev/watchdog0",
                 "[ 3.0] rcu: INFO: rcu_sched self-detected stall on CPU"):
        expected = [("rcu stall", line)] if "stall on CPU" in line else []
        assert consolescan.scan(line) == expected, line


def test_scan_clean_console_and_allowlist() -> None:
    import re

    assert consolescan.scan("[  OK  ] Started ssh.service\nlogin: ") == []
    line = "[ 9.2] Out of memory: Killed process 812 (stress)"
    assert consolescan.scan(line, [re.compile(r"Killed process \d+ \(stress\)")]) == []

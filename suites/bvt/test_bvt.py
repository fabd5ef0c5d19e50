"""BVT core: the image boots to a healthy system that its default user can log in to and run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from debian_cloud_tests import consolescan
from debian_cloud_tests.applicability import STARTS_THE_MACHINE
from debian_cloud_tests.facts import Probe
from debian_cloud_tests.probes import CMDLINE
from debian_cloud_tests.systemd import show_blocks

PROBES = [
    Probe("sudo_true", "sudo -n true"),
    # how many entries this boot's journal holds, then the lines the boot checks look for;
    # journalctl's failure is its own (exit 2), not grep's "nothing found" (exit 1), but its
    # exit 1 with nothing said is a journal without this boot ("No such boot ID")
    Probe("journal_boot_problems", "j=$(journalctl -b -q --no-pager -o cat); r=$?; "
          "[ $r -eq 0 ] || { [ $r -eq 1 ] && [ -z \"$j\" ]; } || exit 2; "
          "echo \"entries $(printf '%s\\n' \"$j\" | grep -c .)\"; "
          "printf '%s\\n' \"$j\" | grep -E '[Oo]rdering cycle|Failed to mount|Dependency failed for'",
          root=True),
    Probe("journal_errors", "journalctl -b -p err --no-pager -o 'with-unit' -q", root=True),
    # the consoles the kernel uses (a console= naming a port this platform lacks is not among
    # them, and systemd starts no getty for it), then one systemctl call for their gettys
    Probe("serial_gettys", "read -r c </sys/class/tty/console/active; set --; for t in $c; do "
          "echo \"$t\"; set -- \"$@\" \"serial-getty@$t.service\"; "
          "done; echo; [ $# -eq 0 ] || systemctl show -p Id,ActiveState \"$@\""),
    CMDLINE,
    # the state first (boot is over by ready, so --wait returns at once), then the failed units
    Probe("system_state", "systemctl is-system-running --wait; "
          "systemctl --failed --plain --no-legend --no-pager"),
    # one line each: root source, partition size, disk, disk size, partition start (sectors),
    # file system size
    Probe("root_layout", "s=$(findmnt -no SOURCE /) && d=$(lsblk -ndo PKNAME \"$s\") && "
          "p=/sys/class/block/${s##*/} && read -r ps <$p/size && read -r ds </sys/class/block/$d/size "
          "&& read -r st <$p/start && echo \"$s\" && echo $((ps * 512)) && echo \"$d\" && "
          "echo $((ds * 512)) && echo \"$st\" && df -B1 --output=size / | tail -1"),
]

ALLOWLIST = Path(__file__).with_name("console-allowlist.txt")
JOURNAL_ALLOWLIST = Path(__file__).with_name("journal-allowlist.txt")
SERIAL_TTY = re.compile(r"^(ttyS\d+|ttyAMA\d+|hvc\d+|ttysclp\d+)(,.*)?$")
# GPT keeps a 33-sector backup at the end; growpart leaves at most alignment slack beyond it.
GROWN_SLACK = 8 * 1024 * 1024


def test_ssh_login_default_user(instance) -> None:
    """The image's default user logs in over SSH with the key injected through user-data."""
    assert instance.ready.login_error is None, (
        f"SSH login as {instance.machine.ssh.user} with the injected key was refused "
        f"({instance.ready.login_error}); check sshd's AuthorizedKeysFile and that cloud-init's "
        "default user is created with ssh_authorized_keys")
    res = instance.host.run("id -un")
    assert res.rc == 0 and res.stdout.strip() == instance.machine.ssh.user, (
        f"logged in, but as {res.stdout.strip()!r} instead of {instance.machine.ssh.user!r}")


def test_system_running(facts) -> None:
    """systemd reached `running`: every unit started, none failed."""
    lines = facts["system_state"].stdout.splitlines()
    state = lines[0].strip() if lines else ""
    failed = "\n".join(ln for ln in lines[1:] if ln.strip())
    assert state == "running", (
        f"system state is {state!r}, not 'running'; failed units:\n{failed or '(none listed)'}\n"
        "fix or disable the failing units (journalctl -u UNIT shows why)")


def test_sudo_passwordless(facts) -> None:
    """The default user runs sudo without a password (cloud images have no passwords)."""
    res = facts["sudo_true"]
    assert res.rc == 0, (
        f"`sudo -n true` failed (rc {res.rc}): {res.stderr.strip()}; the default user needs "
        "NOPASSWD:ALL (cloud-init system_info.default_user.sudo)")


def test_sudo_does_not_warn(facts) -> None:
    """sudo prints nothing on stderr: the hostname resolves and sudo's config is sane."""
    res = facts["sudo_true"]
    if res.rc != 0:
        pytest.skip("sudo does not work at all (see sudo_passwordless)")
    assert res.stderr.strip() == "", (
        f"sudo warns: {res.stderr.strip()!r}; usually the hostname does not resolve: let "
        "cloud-init manage /etc/hosts (manage_etc_hosts: true) or install libnss-myhostname")


def test_serial_console_on_cmdline(facts) -> None:
    """The kernel's primary console (the last console=) is a serial port, so cloud consoles work."""
    cmdline = facts["cmdline"].stdout.split()
    consoles = [arg.split("=", 1)[1] for arg in cmdline if arg.startswith("console=")]
    assert consoles and SERIAL_TTY.match(consoles[-1]), (
        f"kernel console arguments {consoles or 'none'}: the last console= must be a serial port "
        "(ttyS0 on amd64, ttyAMA0 on arm64) or cloud consoles show nothing; set it in "
        "GRUB_CMDLINE_LINUX_DEFAULT")


def test_serial_getty_active(facts) -> None:
    """A login prompt runs on the serial console (a cloud's interactive console reaches the guest)."""
    out = facts["serial_gettys"]
    consoles, _, shown = out.stdout.partition("\n\n")
    ttys = consoles.split()
    states = show_blocks(shown, ttys)
    serial = {tty: states.get(tty, {}).get("ActiveState", out.why()) for tty in ttys if SERIAL_TTY.match(tty)}
    if not serial:
        pytest.skip("not applicable: the kernel uses no serial console (see "
                    "bvt.serial_console_on_cmdline)")
    inactive = {tty: state for tty, state in serial.items() if state != "active"}
    assert not inactive, (f"no getty on serial console {', '.join(inactive)} ({inactive}); do not "
                          "mask serial-getty@.service")


def test_journal_records_this_boot(facts) -> None:
    """systemd-journald keeps this boot's log: the journal holds its entries.  Without them
    (journald's Storage=none, a journal that cannot be written) nobody can tell why an instance
    misbehaves, and the checks that read the journal would find nothing to fault."""
    count = _journal_entries(facts)
    assert count, ("this boot's journal holds no entry: journald keeps nothing (Storage=none in "
                   "/etc/systemd/journald.conf or a journald.conf.d drop-in?); keep the default "
                   "(Storage=auto, persistent where /var/log/journal exists)")


def test_journal_free_of_errors(facts) -> None:
    """The journal of this boot holds no error (priority err or worse) beyond the allowlist."""
    _require_journal(facts)
    out = facts["journal_errors"]
    if not out.ok:
        pytest.fail(f"cannot read the journal: {out.why()}", pytrace=False)
    allowed = consolescan.load_allowlist(JOURNAL_ALLOWLIST)
    errors = [line for line in out.lines()
              if not any(p.search(line) for p in allowed)]
    assert not errors, (f"{len(errors)} errors in this boot's journal, first: {errors[:5]}; fix "
                        "their cause in the image (`journalctl -b -p err` on an instance shows "
                        "them all), or allowlist a harmless one in suites/bvt/journal-allowlist.txt")


def test_root_filesystem_grown(facts) -> None:
    """The root partition and file system were grown to fill the disk (growpart + resize2fs)."""
    out = facts["root_layout"]
    fields = [ln.strip() for ln in out.stdout.splitlines()]
    if not out.ok or len(fields) != 6 or not all(f.isdigit() for f in fields[1:2] + fields[3:]):
        pytest.fail(f"cannot find the partition and disk under the root file system: {out.why()}",
                    pytrace=False)
    source, part_size, disk = fields[0], int(fields[1]), fields[2]
    disk_size, start, fs = int(fields[3]), int(fields[4]) * 512, int(fields[5])
    unused = disk_size - (start + part_size)
    assert unused <= GROWN_SLACK, (
        f"root partition {source} ends {unused // 2**20} MiB before the end of /dev/{disk}: "
        "growpart did not run; install cloud-guest-utils and keep cloud-init's growpart module")
    assert fs >= 0.9 * part_size, (
        f"root file system is {fs // 2**20} MiB on a {part_size // 2**20} MiB partition: it was "
        "not resized; keep cloud-init's resizefs module (resize_rootfs: true)")


@pytest.mark.applies(provider=STARTS_THE_MACHINE)
def test_console_free_of_kernel_errors(machine) -> None:
    """No panic, oops, segfault, OOM kill, failed unit, lockup, stall or hung task on the console.

    The table is consolescan's: also call traces, emergency mode, RCU stalls and a service's
    watchdog timeout."""
    found = consolescan.scan(machine.console_log(), consolescan.load_allowlist(ALLOWLIST))
    assert not found, "trouble on the serial console:\n" + "\n".join(
        f"  [{name}] {line}" for name, line in found[:20]) + (
        "\nthe console log (artefacts) shows what led to it; allowlist a harmless line in "
        "suites/bvt/console-allowlist.txt")


@pytest.mark.applies(provider=STARTS_THE_MACHINE)
def test_boot_within_budget(machine, boot_budget) -> None:
    """The image booted to multi-user and SSH-ready within the boot budget for this platform (per
    provider, and per acceleration where the machine is emulated)."""
    # ready also waits for cloud-init's final stage, which systemd starts after multi-user.target
    if machine.boot_seconds is None:
        pytest.fail("the platform did not measure this boot (no SSH-ready time)", pytrace=False)
    assert machine.boot_seconds <= boot_budget, (
        f"SSH ready after {machine.boot_seconds:.1f}s, budget {boot_budget:.0f}s: look for slow units "
        "with `systemd-analyze blame` and `systemd-analyze critical-chain`")


def _journal_entries(facts) -> int:
    """How many entries this boot's journal holds (the probe's first line)."""
    out = facts["journal_boot_problems"]
    first = out.stdout.partition("\n")[0].split()
    if out.rc not in (0, 1) or len(first) != 2 or first[0] != "entries" or not first[1].isdigit():
        pytest.fail(f"cannot read the journal: {out.why()}", pytrace=False)
    return int(first[1])


def _require_journal(facts) -> None:
    """An empty journal proves nothing clean: fail the checks that read it, and say why."""
    if not _journal_entries(facts):
        pytest.fail("this boot's journal holds no entry, so nothing can be checked in it (see "
                    "bvt.journal_records_this_boot)", pytrace=False)


def _journal(facts, pattern: str) -> list[str]:
    _require_journal(facts)
    lines = facts["journal_boot_problems"].lines()[1:]
    return [line for line in lines if re.search(pattern, line)]


def test_no_ordering_cycles(facts) -> None:
    """systemd found no ordering cycle among the units (it breaks them by dropping jobs at random)."""
    found = _journal(facts, r"[Oo]rdering cycle")
    assert not found, "ordering cycles in this boot:\n" + "\n".join(found[:10]) + (
        "\nremove the After=/Before= (or Wants=) that closes the cycle in the units named")


def test_no_failed_mounts(facts) -> None:
    """Every mount in fstab succeeded."""
    found = _journal(facts, r"Failed to mount|Dependency failed for .*\.mount")
    assert not found, "failed mounts:\n" + "\n".join(found[:10]) + "\nfix or remove the fstab entry"


@pytest.mark.applies(provider=STARTS_THE_MACHINE)
def test_console_clean_at_end(dct_run, machine) -> None:
    """At the end of the run (reboots and every other check done) no machine's console shows trouble."""
    allow = consolescan.load_allowlist(ALLOWLIST)
    machines = [inst.machine for inst in dct_run.fleet.instances] if dct_run.fleet else [machine]
    found = [(m.facts.instance_id, name, line) for m in machines
             for name, line in consolescan.scan(m.console_log(), allow)]
    assert not found, "trouble on the console during the run:\n" + "\n".join(
        f"  {iid} [{name}] {line}" for iid, name, line in found[:20]) + (
        "\nit came after boot (during the checks or a reboot): the console log in the artefacts "
        "shows what the machine was doing")

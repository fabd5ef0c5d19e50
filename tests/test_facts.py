"""The probe runner: one shell script, each probe's own output and status, and no probe can eat
the script that follows it by reading stdin."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from debian_cloud_tests import ssh
from debian_cloud_tests.facts import Probe, _parse, _script, _status, start
from debian_cloud_tests.machine import SSHEndpoint

from .fakes.sshd import Sshd


def _run(probes: list[Probe], *more: list[Probe]) -> dict:
    out = subprocess.run(["sh", "-s"], input=_script([probes, *more]).encode(), capture_output=True,
                         timeout=30).stdout
    return _parse(out)


def test_each_probe_reports_its_output_and_status() -> None:
    got = _run([Probe("ok", "printf 'a\\nb\\n'"), Probe("bad", "echo out; echo err >&2; exit 3")])
    assert (got["ok"].rc, got["ok"].lines()) == (0, ["a", "b"])
    assert (got["bad"].rc, got["bad"].stdout, got["bad"].stderr) == (3, "out\n", "err\n")


def test_a_probe_reading_stdin_does_not_swallow_the_rest() -> None:
    got = _run([Probe("reads", "cat"), Probe("after", "echo still here")])
    assert got["reads"].stdout == ""
    assert got["after"].stdout == "still here\n"


def test_missing_command_is_data_not_an_error() -> None:
    got = _run([Probe("missing", "no-such-command-dct")])
    assert got["missing"].rc == 127 and not got["missing"].ok


def test_every_batch_comes_back_whole() -> None:
    got = _run([Probe("late", "sleep 1; echo late")], [Probe("early", "echo early")],
               [Probe("empty", "true")])
    assert {name: out.stdout for name, out in got.items()} == {
        "late": "late\n", "early": "early\n", "empty": ""}


def test_each_probe_is_timed_by_the_guests_clock() -> None:
    got = _run([Probe("quick", "true"), Probe("slow", "sleep 0.5"),
                Probe("busy", "i=0; while [ $i -lt 300000 ]; do i=$((i + 1)); done")])
    assert got["slow"].seconds is not None and 0.45 <= got["slow"].seconds < 5
    assert got["quick"].seconds is not None and got["quick"].seconds < got["slow"].seconds
    assert got["quick"].ended is not None and got["slow"].started is not None
    assert got["quick"].ended <= got["slow"].started + 0.01  # one batch: one after the other
    # the CPU its processes used: none to sleep, most of its time to count
    assert got["slow"].cpu is not None and got["slow"].cpu < 0.1
    assert got["busy"].cpu is not None and got["busy"].seconds is not None
    # (no share of its wall time: on a host busy with other guests it may get little of a core)
    assert got["busy"].cpu > 0.1 and got["busy"].cpu <= got["busy"].seconds * 2 + 0.05


def test_a_status_without_times_is_still_a_status() -> None:
    """A probe's status file as an older runner wrote it, or a damaged one."""
    assert (_status(b"3\n"), _status(b""), _status(b"x 1 2")) == (
        (3, None, None), (-1, None, None), (-1, None, None))


def test_archives_arrive_in_finishing_order() -> None:
    out = subprocess.run(["sh", "-s"], capture_output=True, timeout=30, input=_script(
        [[Probe("late", "sleep 1; echo late")], [Probe("early", "echo early")]]).encode()).stdout
    assert out.index(b"early.rc") < out.index(b"late.rc")


def test_a_root_shell_runs_its_slow_probes_first() -> None:
    """Slow probes are the critical path: under sudo they get the CPU before the quick ones."""
    if os.geteuid() != 0:
        pytest.skip("raising a priority needs root")
    script = _script([[Probe("slow", "nice", slow=True)], [Probe("quick", "nice")]], boost_slow=True)
    got = _parse(subprocess.run(["sh", "-s"], input=script.encode(), capture_output=True,
                                timeout=30).stdout)
    base = int(subprocess.run(["nice"], capture_output=True, text=True).stdout)
    assert (int(got["slow"].stdout), int(got["quick"].stdout)) == (max(base - 15, -20), base)


def test_binary_output_and_odd_names_survive() -> None:
    got = _run([Probe("bin", "printf '\\000\\377DCT x\\n'"), Probe("config.a[b]", "echo x")])
    assert got["bin"].stdout.encode(errors="replace").startswith(b"\x00")
    assert got["config.a[b]"].stdout == "x\n"



def test_a_quick_probe_does_not_wait_for_a_slow_one(sshd: Sshd) -> None:
    """Over a real sshd: a check reads its probe as soon as that probe's batch is done, while
    a slow probe still runs beside it; `wait` then has every probe."""
    client = ssh.connect(SSHEndpoint("127.0.0.1", sshd.port, sshd.user, sshd.client_key),
                         [sshd.host_key])
    try:
        started = time.monotonic()
        facts = start(client, [Probe("quick", "echo quick"),
                               Probe("slow", "sleep 3; echo slow", slow=True)])
        assert facts["quick"].stdout == "quick\n"
        assert time.monotonic() - started < 2.5
        assert "slow" in facts and facts.wait()["slow"].stdout == "slow\n"
        assert time.monotonic() - started >= 3
    finally:
        client.close()


def test_a_probe_that_never_ran_is_data_for_the_check(sshd: Sshd) -> None:
    client = ssh.connect(SSHEndpoint("127.0.0.1", sshd.port, sshd.user, sshd.client_key),
                         [sshd.host_key])
    client.close()  # the connection is gone before the gather
    facts = start(client, [Probe("lost", "echo never")])
    out = facts["lost"]
    assert out.rc == -1 and "could not run" in out.stderr


def test_a_root_shell_that_cannot_start_fails_only_its_probes(sshd: Sshd) -> None:
    """sudo missing or refusing: every root probe is data saying so; the user's probes and the
    slow ones of the user shell still come back."""
    client = ssh.connect(SSHEndpoint("127.0.0.1", sshd.port, sshd.user, sshd.client_key),
                         [sshd.host_key])
    try:
        facts = start(client, [Probe("mine", "echo mine"), Probe("slow", "echo slow", slow=True),
                               Probe("root", "id -u", root=True),
                               Probe("root_slow", "id -u", root=True, slow=True)],
                      sudo="dct-no-such-sudo -n").wait()
        assert (facts["mine"].stdout, facts["slow"].stdout) == ("mine\n", "slow\n")
        for name in ("root", "root_slow"):
            assert facts[name].rc == -1 and "could not run under sudo" in facts[name].stderr
            assert "dct-no-such-sudo" in facts[name].stderr
    finally:
        client.close()

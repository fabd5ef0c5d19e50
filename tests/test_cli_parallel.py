"""`debian-cloud-tests run` with several targets or instances: parallel runs, one JUnit each.

The runs are real: each is the plugin on a real sshd (the ssh provider), started by the CLI as a
user starts it; the qemu end-to-end test (`--instances 2`) is in test_e2e_parallel.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from debian_cloud_tests.errors import UsageError
from debian_cloud_tests.parallel import Target, combined_exit, expand, parse_target
from debian_cloud_tests.plugin import suites_dir

from .conftest import junit_span, parse_junit
from .fakes.sshd import Sshd, running_sshd, unavailable

CHECK = "metadata.arch_matches"
SELECT = f"{suites_dir()}/metadata/test_metadata.py::test_arch_matches"


def test_target_is_provider_image_and_its_own_options() -> None:
    assert parse_target("aws:ami-0123 --region eu-west-1") == Target(
        "aws", "ami-0123", ("--region", "eu-west-1"))
    assert parse_target("gce:projects/debian-cloud/global/images/x").image == \
        "projects/debian-cloud/global/images/x"
    assert parse_target("qemu:/images/a:b.qcow2").image == "/images/a:b.qcow2"


@pytest.mark.parametrize("bad", ["", "qemu", ":image", "Qemu:x", "qemu:", "qemu:x 'unclosed"])
def test_bad_target_is_a_usage_error(bad: str) -> None:
    with pytest.raises(UsageError, match="--target"):
        parse_target(bad)


def test_labels_are_unique_and_name_the_provider() -> None:
    runs = expand([Target("qemu", "a.qcow2"), Target("aws", "ami-1")], 2)
    assert [r.label for r in runs] == ["qemu-1", "qemu-2", "aws-1", "aws-2"]
    assert [r.label for r in expand([Target("qemu", "a"), Target("aws", "b")], 1)] == ["qemu", "aws"]


def test_instances_of_an_existing_host_are_refused() -> None:
    with pytest.raises(UsageError, match="the one host it is given"):
        expand([Target("ssh", "x")], 2)
    with pytest.raises(UsageError, match="1 or more"):
        expand([Target("qemu", "x")], 0)


@pytest.mark.parametrize(("codes", "expected"), [
    ([0, 0], 0), ([0, 1], 1), ([1, 1], 1), ([1, 33, 0], 33), ([0, 22, 34], 22), ([2, 1], 2)])
def test_exit_code_says_the_most(codes: list[int], expected: int) -> None:
    assert combined_exit(codes) == expected


@pytest.fixture
def two_hosts(tmp_path: Path) -> Iterator[tuple[Sshd, Sshd]]:
    why = unavailable()
    if why:
        pytest.skip(why)
    with running_sshd(tmp_path / "a") as a, running_sshd(tmp_path / "b") as b:
        yield a, b


def _target(server: Sshd, *more: str) -> str:
    return " ".join(["ssh:debian-12-genericcloud-amd64", f"--host=root@127.0.0.1:{server.port}",
                     f"--ssh-key={server.client_key}", f"--host-key='{server.host_key}'", *more])


def _cli(tmp_path: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "debian_cloud_tests.cli", "run", f"--output={tmp_path / 'out'}",
            "--name=par", *args]


def test_two_targets_run_at_once_each_with_its_own_junit(two_hosts: tuple[Sshd, Sshd],
                                                         tmp_path: Path) -> None:
    a, b = two_hosts
    proc = subprocess.run(_cli(tmp_path, "--target", _target(a), "--target", _target(b), "--",
                               SELECT), capture_output=True, text=True, timeout=180, cwd=tmp_path)
    explain = proc.stdout[-3000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, explain
    out = tmp_path / "out"
    groups = set()
    for label, server in (("ssh-1", a), ("ssh-2", b)):
        checks, _, props = parse_junit(out / f"par-{label}.xml")
        assert checks[CHECK] == "passed", explain
        assert props["provider"] == "ssh", explain
        # the gate reads the two as instances tested together, not as retries
        assert props["parallel_label"] == label and props["parallel_run"], props
        groups.add(props["parallel_run"])
        assert props["ssh_host"] == f"127.0.0.1:{server.port}", props["ssh_host"]  # its own host
        assert "1 passed" in (out / f"par-{label}.log").read_text(), explain
        assert f"[{label}] " in proc.stdout and f"debian-cloud-tests: {label}: " in proc.stdout
        assert (out / "artifacts" / label).is_dir(), explain
    assert "2 runs in" in proc.stdout, explain
    assert len(groups) == 1, groups
    # in parallel: the second run started before the first one ended
    (s1, e1), (s2, e2) = junit_span(out / "par-ssh-1.xml"), junit_span(out / "par-ssh-2.xml")
    assert s2 < e1 and s1 < e2, (s1, e1, s2, e2)


def test_a_target_that_cannot_start_does_not_stop_the_others(two_hosts: tuple[Sshd, Sshd],
                                                             tmp_path: Path) -> None:
    a, _ = two_hosts
    proc = subprocess.run(_cli(tmp_path, "--target", _target(a), "--target", "nosuch:image", "--",
                               SELECT), capture_output=True, text=True, timeout=180, cwd=tmp_path)
    explain = proc.stdout[-3000:] + proc.stderr[-2000:]
    assert proc.returncode == 21, explain  # the unknown provider's own code, not a pass
    assert "[nosuch] debian-cloud-tests: error: " in proc.stdout, explain
    checks, _, _ = parse_junit(tmp_path / "out" / "par-ssh.xml")
    assert checks[CHECK] == "passed", explain
    assert "Traceback" not in proc.stdout + proc.stderr


def test_a_stop_reaches_every_run_once_and_each_cleans_up(tmp_path: Path) -> None:
    """SIGTERM to the command (a CI job cancelled): both runs, each waiting for a host that never
    answers, stop and clean up; the command says so and exits 2, with no run left behind."""
    why = unavailable()
    if why:
        pytest.skip(why)
    with running_sshd(tmp_path / "a") as a:
        silent = _target(a).replace(f":{a.port}", ":9")  # the discard port: nothing listens
        cmd = _cli(tmp_path, "--target", silent + " --boot-timeout=120",
                   "--target", silent + " --boot-timeout=120", "--", SELECT)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                cwd=tmp_path, start_new_session=True)
        time.sleep(6)  # both runs are waiting for SSH by now
        children = _children(proc.pid)
        assert len(children) == 2, children
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, out
    assert time.monotonic() - began < 30, out
    assert "stopping: waiting for 2 runs to clean up" in out
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()], out


def _children(pid: int) -> list[int]:
    """The processes whose parent is *pid*."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry))
    return found

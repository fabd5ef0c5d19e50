"""`gc` removes run dirs whose run was killed too hard for its guard, and nothing that is live."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from debian_cloud_tests import gc
from debian_cloud_tests.errors import UnknownProviderError, UsageError
from debian_cloud_tests.provider import available
from debian_cloud_tests.rundir import (
    CLOUD_FILE,
    PIDS_FILE,
    RunDir,
    is_run_id,
    mentions,
    new_run_id,
    record_cloud,
)


def test_stale_run_dir_and_its_process_are_reaped(tmp_path: Path) -> None:
    stale = tmp_path / "dct-run-20260101000000-abcdef-x1"
    stale.mkdir()
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    # A process that names the run dir, as QEMU does, registered in the pids file.
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(stale)])
    (stale / PIDS_FILE).write_text(f"{proc.pid}\n")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    deadline = time.monotonic() + 10  # until exec has replaced the forked child's command line
    while str(stale).encode() not in Path(f"/proc/{proc.pid}/cmdline").read_bytes():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert gc.collect_local(tmp_path) == [str(stale)]
    assert proc.wait(timeout=10) != 0
    assert not stale.exists()


def test_live_run_dir_is_left_alone(tmp_path: Path) -> None:
    run = RunDir("live", base=tmp_path)  # its guard process holds it
    try:
        os.utime(run.path, (time.time() - 3600, time.time() - 3600))
        deadline = time.monotonic() + 10  # until the guard has exec'd with the path in its argv
        while not gc._holders(run.path):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert gc.collect_local(tmp_path) == []
        assert run.path.exists()
    finally:
        run.close()
    assert not run.path.exists()


def test_cli_gc_runs(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    (tmp_path / "dct-run-old").mkdir()
    os.utime(tmp_path / "dct-run-old", (time.time() - 3600, time.time() - 3600))
    out = subprocess.run([sys.executable, "-m", "debian_cloud_tests.cli", "gc"], capture_output=True,
                         text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "removed stale run dir" in out.stdout and not (tmp_path / "dct-run-old").exists()


@pytest.mark.parametrize(("args", "code", "says"), [
    (["--provider", "nosuch"], UnknownProviderError.exit_code,
     f"gc: unknown provider 'nosuch'; installed: {', '.join(sorted(available()))}"),
    (["--provider", "qemu"], UnknownProviderError.exit_code,
     "gc: provider 'qemu' has no garbage collection (plain `debian-cloud-tests gc` reaps local run "
     f"dirs); with gc: {', '.join(n for n in sorted(available()) if n != 'qemu')}"),
    (["--provider", "vagrant", "--region", "x"], UsageError.exit_code,
     "gc: --region applies to no provider given (vagrant); drop it"),
    (["--provider", "ssh", "--project", "p"], UsageError.exit_code,
     "gc: --project applies to no provider given (ssh); drop it"),
])
def test_cli_gc_bad_provider_is_one_line_and_touches_nothing(tmp_path: Path, args: list[str], code: int,
                                                             says: str) -> None:
    """Checked before anything is removed: a stale run dir outlives the refused command."""
    stale = tmp_path / "dct-run-old"
    stale.mkdir()
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    out = subprocess.run([sys.executable, "-m", "debian_cloud_tests.cli", "gc", *args],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "TMPDIR": str(tmp_path)})
    assert out.returncode == code, out.stderr
    assert out.stderr.splitlines() == [f"debian-cloud-tests: error: {says}"] and out.stdout == ""
    assert stale.exists()


def test_each_provider_gets_only_the_scope_it_takes() -> None:
    """The options reach each collect_garbage by the name it takes them by; a required region
    (aws) is passed even when not given; what a provider does not take is never passed."""
    given = {"region": "r1", "project": "p1", "os_cloud": "c1", "subscription": "s1"}
    taken = {name: gc.scoped_kwargs(name, gc._collector(name), given)
             for name in ("aws", "gce", "azure", "openstack", "ssh", "vagrant")}
    assert taken == {"aws": {"region": "r1"}, "gce": {"region": "r1", "project": "p1"},
                     "azure": {"region": "r1", "subscription": "s1"},
                     "openstack": {"region": "r1", "os_cloud": "c1"}, "ssh": {}, "vagrant": {}}
    assert gc.scoped_kwargs("aws", gc._collector("aws"), {}) == {"region": None}
    assert gc.scoped_kwargs("openstack", gc._collector("openstack"), {}) == {}


# -- only the caller's own run dirs, and only what belongs to them --------------------------------

NOBODY = 65534


def _old(path: Path) -> Path:
    """*path* (not what it points to) older than gc's MIN_AGE."""
    os.utime(path, (time.time() - 3600, time.time() - 3600), follow_symlinks=False)
    return path


def _naming(*args: str, user: int | None = None) -> subprocess.Popen[bytes]:
    """A process whose command line holds *args* (as QEMU's names its run dir), run as *user*."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *args], user=user)
    deadline = time.monotonic() + 10  # until exec has replaced the forked child's command line
    while args[-1].encode() not in Path(f"/proc/{proc.pid}/cmdline").read_bytes():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return proc


def _alive(proc: subprocess.Popen[bytes]) -> bool:
    try:
        proc.wait(timeout=0.5)
    except subprocess.TimeoutExpired:
        return True
    return False


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        proc.kill()
        proc.wait()


def _skipped(out: str, path: Path) -> str:
    lines = [ln for ln in out.splitlines() if str(path) in ln]
    assert len(lines) == 1 and lines[0].startswith(f"skipped run dir {path}: "), out
    return lines[0]


@pytest.mark.skipif(os.geteuid() != 0, reason="making another user's run dir needs root")
def test_root_leaves_another_users_run_dir_and_process_alone(
        tmp_path: Path, procs: list[subprocess.Popen[bytes]], capsys: pytest.CaptureFixture[str]) -> None:
    theirs = tmp_path / "dct-run-20260101000000-abcdef-theirs"
    theirs.mkdir(mode=0o700)
    procs.append(proc := _naming(str(theirs), user=NOBODY))
    (theirs / PIDS_FILE).write_text(f"{proc.pid}\n")
    for path in (theirs / PIDS_FILE, theirs):
        os.chown(path, NOBODY, NOBODY)
    _old(theirs)
    assert gc.collect_local(tmp_path) == []
    assert "belongs to uid 65534, not to this user (uid 0)" in _skipped(capsys.readouterr().out, theirs)
    assert _alive(proc) and (theirs / PIDS_FILE).exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="a process of another user needs root")
def test_a_registered_process_of_another_user_is_never_killed(
        tmp_path: Path, procs: list[subprocess.Popen[bytes]]) -> None:
    """Our stale run dir goes; a pid in it that is now another user's process, naming the dir
    all the same, is not ours to kill."""
    ours = tmp_path / "dct-run-20260101000000-abcdef-ours"
    ours.mkdir(mode=0o700)
    procs.append(proc := _naming(str(ours), user=NOBODY))
    (ours / PIDS_FILE).write_text(f"{proc.pid}\n")
    _old(ours)
    assert gc.collect_local(tmp_path) == [str(ours)]
    assert _alive(proc) and not ours.exists()


def test_a_symlinked_run_dir_is_skipped(tmp_path: Path, procs: list[subprocess.Popen[bytes]],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A run dir that is a symlink (planted in a shared temp dir) is not followed: what it
    points to is neither killed nor removed."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    link = tmp_path / "dct-run-20260101000000-abcdef-link"
    link.symlink_to(elsewhere)
    procs.append(proc := _naming(str(link)))
    (elsewhere / PIDS_FILE).write_text(f"{proc.pid}\n")
    _old(elsewhere)
    _old(link)
    assert gc.collect_local(tmp_path) == []
    assert _skipped(capsys.readouterr().out, link).endswith(": it is a symlink")
    assert _alive(proc) and link.is_symlink() and (elsewhere / PIDS_FILE).exists()


@pytest.mark.parametrize("record", [PIDS_FILE, CLOUD_FILE])
def test_a_symlinked_record_file_is_skipped(tmp_path: Path, procs: list[subprocess.Popen[bytes]],
                                            capsys: pytest.CaptureFixture[str], record: str) -> None:
    run = tmp_path / "dct-run-20260101000000-abcdef-x1"
    run.mkdir(mode=0o700)
    procs.append(proc := _naming(str(run)))
    target = tmp_path / "planted"
    target.write_text(f"{proc.pid}\n")
    (run / record).symlink_to(target)
    if record == CLOUD_FILE:
        (run / PIDS_FILE).write_text(f"{proc.pid}\n")
    _old(run)
    assert gc.collect_local(tmp_path) == []
    assert _skipped(capsys.readouterr().out, run).endswith(f": its {record} is a symlink")
    assert _alive(proc) and run.is_dir() and target.exists()


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702])
def test_a_group_or_world_writable_run_dir_is_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      mode: int) -> None:
    run = tmp_path / "dct-run-20260101000000-abcdef-x1"
    run.mkdir()
    run.chmod(mode)
    _old(run)
    assert gc.collect_local(tmp_path) == []
    assert f"is group- or world-writable (mode {mode:o})" in _skipped(capsys.readouterr().out, run)
    assert run.is_dir()


def test_a_pid_naming_a_longer_path_is_not_the_runs(tmp_path: Path,
                                                    procs: list[subprocess.Popen[bytes]]) -> None:
    """/tmp/dct-run-…-x is a prefix of /tmp/dct-run-…-x1: a process of that other run, found
    under a reused pid, is spared."""
    stale = tmp_path / "dct-run-20260101000000-abcdef-x"
    stale.mkdir(mode=0o700)
    procs.append(other := _naming(f"file={stale}1/disk.qcow2,if=virtio"))
    (stale / PIDS_FILE).write_text(f"{other.pid}\n")
    _old(stale)
    assert gc.collect_local(tmp_path) == [str(stale)]
    assert _alive(other) and not stale.exists()


@pytest.mark.parametrize("cmdline", [b"qemu\0-drive\0file=/t/dct-run-a/disk.qcow2,if=virtio\0",
                                     b"python\0-m\0debian_cloud_tests.rundir\0/t/dct-run-a\0",
                                     b"qemu\0-chardev\0file,id=console,path=/t/dct-run-a/console.log\0",
                                     b"/t/dct-run-a"])
def test_mentions_the_run_dir_exactly(cmdline: bytes) -> None:
    assert mentions(cmdline, Path("/t/dct-run-a"))
    assert not mentions(cmdline, Path("/t/dct-run-"))
    assert not mentions(cmdline.replace(b"dct-run-a", b"dct-run-ab"), Path("/t/dct-run-a"))
    assert not mentions(cmdline.replace(b"/t/", b"/u/t/"), Path("/t/dct-run-a"))


def test_a_kept_run_dir_is_never_collected(tmp_path: Path, procs: list[subprocess.Popen[bytes]],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """--keep-instance: the guard lets go, and the machine (a QEMU registered in the run dir)
    outlives the run; gc leaves both alone, however old."""
    run = RunDir("20260101000000-abcdef", base=tmp_path)
    procs.append(qemu := _naming(f"file={run.path}/disk.qcow2"))
    run.register_pid(qemu.pid)
    run.detach()
    _old(run.path)
    assert gc.collect_local(tmp_path) == []
    assert "kept by --keep-instance" in _skipped(capsys.readouterr().out, run.path)
    assert _alive(qemu) and run.path.is_dir()


# -- cloud records: the run id is checked before it reaches a cloud filter ------------------------

@pytest.mark.parametrize("run_id", ["*", "2026*", "20260101000000-abcde?", "20260101000000-ABCDEF",
                                    "20260101000000-abcdef\n", "٢٠٢٦٠١٠١٠٠٠٠٠٠-abcdef", "", None, 7])
def test_a_record_with_a_run_id_not_ours_deletes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        run_id: object) -> None:
    """EC2 filters take * and ? as wildcards: a record saying run_id "*" would name every run's
    resources.  It is refused in one line, and nothing is looked up or deleted, locally either."""
    from debian_cloud_tests.providers.aws import gc as aws_gc

    looked: list[object] = []
    monkeypatch.setattr(aws_gc, "_collect", lambda *args: looked.append(args) or [])
    run = tmp_path / "dct-run-20260101000000-abcdef-x1"
    run.mkdir(mode=0o700)
    (run / CLOUD_FILE).write_text(json.dumps({"provider": "aws", "region": "eu-west-1", "run_id": run_id}))
    _old(run)
    assert gc.collect_local(tmp_path) == []
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "nothing was removed" in err[0], err
    assert looked == [] and (run / CLOUD_FILE).exists()
    if isinstance(run_id, str):
        with pytest.raises(UsageError, match="is not one this tool makes"):
            aws_gc.collect_run("eu-west-1", run_id)
        assert looked == []


def test_a_record_with_a_run_id_of_ours_is_collected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from debian_cloud_tests.providers.aws import gc as aws_gc

    looked: list[object] = []
    monkeypatch.setattr(aws_gc, "_collect", lambda region, ours, chosen: looked.append((region, ours)) or [])
    run = tmp_path / "dct-run-20260101000000-abcdef-x1"
    run.mkdir(mode=0o700)
    record_cloud(run, "aws", region="eu-west-1", run_id="20260101000000-abcdef")
    _old(run)
    assert gc.collect_local(tmp_path) == [str(run)]
    assert looked == [("eu-west-1", {"Name": "tag:dct:run-id", "Values": ["20260101000000-abcdef"]})]
    assert is_run_id(new_run_id())

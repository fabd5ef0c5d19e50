"""Bad input: one clear line, a distinct exit code, no traceback, nothing left behind."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from debian_cloud_tests import errors

from .conftest import run_suites


def _mbr_disk(path: Path, size: int = 64 * 1024 * 1024) -> Path:
    """A raw disk with a partition-table signature and no boot loader: valid input, never boots."""
    with path.open("wb") as fh:
        fh.truncate(size)
        fh.seek(510)
        fh.write(b"\x55\xaa")
    return path


def _leftovers(tmpdir: Path) -> list[str]:
    """Run dirs left in TMPDIR, and processes still mentioning it."""
    left = [p.name for p in tmpdir.glob("dct-run-*")]
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if str(tmpdir).encode() in (proc / "cmdline").read_bytes():
                    left.append(f"pid {proc.name}")
            except OSError:
                pass
    return left


def _assert_one_line_error(run, code: int, needle: str) -> None:
    out = run.stdout + run.stderr
    assert run.rc == code, run.explain()
    assert "Traceback" not in out, run.explain()
    assert needle in out, run.explain()


@pytest.fixture
def tmpdir_env(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    return tmpdir, {"TMPDIR": str(tmpdir)}


@pytest.mark.parametrize("args, code, needle", [
    (["--provider=nope", "--image=x.qcow2"], errors.UnknownProviderError.exit_code,
     "unknown provider 'nope'"),
    (["--provider=qemu"], errors.UsageError.exit_code, "--image is required"),
    (["--provider=qemu", "--image=/nonexistent/debian.qcow2"], errors.ImageNotFoundError.exit_code,
     "image not found"),
    (["--provider=qemu", "--image={text}"], errors.ImageFormatError.exit_code, "is not a disk image"),
    (["--provider=qemu", "--image={disk}", "--arch=arm64", "--firmware=bios"],
     errors.ArchFirmwareError.exit_code, "arm64 machines have no BIOS"),
    (["--provider=qemu", "--image={disk}", "--boot-timeout=soon"], errors.UsageError.exit_code,
     "--boot-timeout"),
    (["--provider=qemu", "--image={disk}", "--instance-type=t3.micro"], errors.UsageError.exit_code,
     "VCPUSxMEMORY_MIB"),
    (["--provider=qemu", "--image={disk}", "--user-data=/nonexistent"], errors.UsageError.exit_code,
     "--user-data /nonexistent: no such file"),
    (["--provider=qemu", "--image={disk}", "--disk-size=lots"], errors.UsageError.exit_code,
     "--disk-size"),
    (["--provider=qemu", "--image={disk}", "--disk-size=1M"], errors.UsageError.exit_code,
     "smaller than the image"),
    (["--provider=vagrant", "--image=/nonexistent/debian.box"], errors.ImageNotFoundError.exit_code,
     "vagrant: box file not found"),
    (["--provider=vagrant", "--image={text}"], errors.ImageFormatError.exit_code,
     "is not a box: not a tar archive"),
    (["--provider=vagrant", "--image=debian/bookworm64", "--instance-type=t3.micro"],
     errors.UsageError.exit_code, "for vagrant write VCPUSxMEMORY_MIB"),
])
def test_bad_options_exit_before_anything_starts(tmp_path: Path, tmpdir_env, args, code, needle) -> None:
    text = tmp_path / "notes.qcow2"
    text.write_text("not an image\n" * 100)
    disk = _mbr_disk(tmp_path / "disk.raw")
    args = [a.format(text=text, disk=disk) for a in args]
    tmpdir, env = tmpdir_env
    run = run_suites(tmp_path, *args, env=env, timeout=120)
    _assert_one_line_error(run, code, needle)
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert not _leftovers(tmpdir)


def test_qemu_not_installed_names_the_package(tmp_path: Path, tmpdir_env) -> None:
    _, env = tmpdir_env
    empty_path = tmp_path / "bin"
    empty_path.mkdir()
    run = run_suites(tmp_path, "--provider=qemu", f"--image={_mbr_disk(tmp_path / 'd.raw')}",
                     env={**env, "PATH": str(empty_path)}, timeout=120)
    _assert_one_line_error(run, errors.MissingDependencyError.exit_code,
                           "apt-get install qemu-system-x86")


def test_bad_ini_value(tmp_path: Path, tmpdir_env) -> None:
    _, env = tmpdir_env
    (tmp_path / "pytest.ini").write_text(
        f"[pytest]\ndct_provider = qemu\ndct_image = {_mbr_disk(tmp_path / 'd.raw')}\ndct_accel = fast\n")
    run = run_suites(tmp_path, env=env, timeout=120)
    _assert_one_line_error(run, errors.UsageError.exit_code, "dct_accel = 'fast'")


@pytest.mark.skipif(not os.path.exists("/usr/bin/qemu-system-x86_64"), reason="needs QEMU")
def test_no_free_port(tmp_path: Path, tmpdir_env) -> None:
    tmpdir, env = tmpdir_env
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = run_suites(tmp_path, "--provider=qemu", f"--image={_mbr_disk(tmp_path / 'd.raw')}",
                         f"--qemu-port-range={port}-{port}", env=env, timeout=120,
                         walled=False)  # the taken port is in this namespace
    _assert_one_line_error(run, errors.NoFreePortError.exit_code, f"no free TCP port in {port}-{port}")
    assert not _leftovers(tmpdir)


@pytest.mark.skipif(not os.path.exists("/usr/bin/qemu-system-x86_64"), reason="needs QEMU")
def test_image_that_never_boots_quotes_the_console(tmp_path: Path, tmpdir_env) -> None:
    tmpdir, env = tmpdir_env
    run = run_suites(tmp_path, "--provider=qemu", f"--image={_mbr_disk(tmp_path / 'd.raw')}",
                     "--boot-timeout=15", env=env, timeout=180)
    _assert_one_line_error(run, errors.BootError.exit_code, "no SSH host keys on the console within 15s")
    assert run.checks and all(s == "error" for s in run.checks.values()), run.checks
    assert not _leftovers(tmpdir)


@pytest.mark.e2e
def test_sshd_never_answering(image_factory, tmp_path: Path, tmpdir_env) -> None:
    tmpdir, env = tmpdir_env
    run = run_suites(tmp_path, "--provider=qemu", f"--image={image_factory('sshd-masked')}",
                     "--boot-timeout=180", env=env, timeout=400)
    _assert_one_line_error(run, errors.SSHNotReadyError.exit_code, "sshd never completed a handshake")
    assert not _leftovers(tmpdir)


def test_without_provider_suites_are_skipped_with_one_reason(tmp_path: Path) -> None:
    from debian_cloud_tests.plugin import suites_dir

    run = run_suites(tmp_path, "-rs", str(suites_dir()), timeout=120)
    assert run.rc == 0, run.explain()
    assert run.checks and set(run.checks.values()) == {"skipped"}
    assert "conformance suites need a machine: pytest --provider=qemu --image=IMAGE" in run.stdout


def test_plugin_is_registered_by_entry_point() -> None:
    from importlib.metadata import entry_points

    assert any(ep.value == "debian_cloud_tests.plugin" for ep in entry_points(group="pytest11"))
    names = {ep.name for ep in entry_points(group="debian_cloud_tests.providers")}
    assert "qemu" in names
    # In a fresh interpreter: loading the plugin imports no cloud SDK.
    code = ("import sys, debian_cloud_tests.plugin; "
            "print(sorted(m for m in ('boto3', 'google.cloud.compute', 'azure.mgmt.compute') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("os_cloud, needle", [
    (None, "openstack: no cloud configured"),
    ("nowhere", "openstack: Cloud nowhere was not found"),
])
def test_openstack_without_cloud_config_is_one_line(tmp_path: Path, tmpdir_env, os_cloud, needle) -> None:
    _, env = tmpdir_env
    env = {**env, "HOME": str(tmp_path), "OS_CLIENT_CONFIG_FILE": str(tmp_path / "none.yaml"),
           "OS_CLOUD": "", "OS_AUTH_URL": "", "DCT_SOURCE_ADDRESS": "127.0.0.1"}
    args = ["--provider=openstack", "--image=debian-12-genericcloud-amd64"]
    run = run_suites(tmp_path, *args, *([f"--os-cloud={os_cloud}"] if os_cloud else []), env=env,
                     timeout=120)
    _assert_one_line_error(run, errors.UsageError.exit_code, needle)
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "set OS_CLOUD (or --os-cloud)" in run.stderr

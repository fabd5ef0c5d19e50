"""Bad input to `debian-cloud-tests build`: one line, its own exit code, before FAI starts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from debian_cloud_tests.faibuild import cli, fai, host
from debian_cloud_tests.faibuild.spec import BuildSpec

ROOT = Path(__file__).resolve().parent.parent
CSPACE = ROOT / "examples" / "fai"
GOOD = ["--release", "bookworm", "--vendor", "genericcloud", "--arch", "amd64"]


@pytest.fixture
def capable(monkeypatch):
    """A host that passes every check, so each test breaks exactly one thing."""
    monkeypatch.setattr(host.os, "geteuid", lambda: 0)
    monkeypatch.setattr(host.shutil, "which", lambda prog: f"/usr/sbin/{prog}")
    monkeypatch.setattr(host, "_kernel_has", lambda fs: False)


def _run(capsys, *argv: str) -> tuple[int, str]:
    rc = cli.main(list(argv))
    err = capsys.readouterr().err.strip()
    return rc, err


@pytest.mark.parametrize(("argv", "word"), [
    (["--release", "buster", "--vendor", "genericcloud"], "release"),
    (["--release", "bookworm", "--vendor", "openstack"], "vendor"),
    (["--release", "bookworm", "--vendor", "ec2", "--arch", "i386"], "arch"),
    (["--release", "bookworm", "--vendor", "ec2", "--firmware", "coreboot"], "firmware"),
    (["--release", "bookworm", "--vendor", "ec2", "--size", "2 GB"], "size"),
    (["--release", "bookworm", "--vendor", "ec2", "--size", "512M"], "too small"),
    (["--release", "bookworm", "--vendor", "ec2", "--arch", "arm64", "--firmware", "bios"], "BIOS"),
    (["--release", "bookworm", "--vendor", "ec2", "--class", "bad-name"], "class"),
])
def test_bad_values(capsys, capable, tmp_path, argv, word):
    rc, err = _run(capsys, *argv, "--output", str(tmp_path))
    assert rc == 20 and len(err.splitlines()) == 1 and word in err, err
    assert not list(tmp_path.iterdir())


def test_not_root(capsys, capable, monkeypatch, tmp_path):
    monkeypatch.setattr(host.os, "geteuid", lambda: 1000)
    rc, err = _run(capsys, *GOOD, "--output", str(tmp_path))
    assert rc == 41 and len(err.splitlines()) == 1 and "root" in err, err


def test_fai_missing_names_packages(capsys, capable, monkeypatch, tmp_path):
    monkeypatch.setattr(host.shutil, "which",
                        lambda prog: None if prog in ("fai-diskimage", "fai", "setup-storage") else prog)
    rc, err = _run(capsys, *GOOD, "--output", str(tmp_path))
    assert rc == 25 and len(err.splitlines()) == 1, err
    assert "fai-server" in err and "fai-setup-storage" in err


def test_no_space_is_found_up_front(capsys, capable, tmp_path):
    free = shutil.disk_usage(tmp_path).free
    rc, err = _run(capsys, *GOOD, "--size", f"{free // 1024**3 + 1}G", "--output", str(tmp_path))
    assert rc == 42 and len(err.splitlines()) == 1 and "space" in err, err
    assert not list(tmp_path.iterdir())


def test_config_space_without_a_class(capsys, capable, tmp_path):
    cspace = tmp_path / "cspace"
    shutil.copytree(CSPACE, cspace)
    shutil.rmtree(cspace / "scripts" / "CLEANUP")
    (cspace / "hooks" / "savelog.CLEANUP").unlink()
    rc, err = _run(capsys, *GOOD, "--config-space", str(cspace), "--output", str(tmp_path / "out"))
    assert rc == 43 and len(err.splitlines()) == 1 and "CLEANUP" in err, err


def test_unknown_extra_class(capsys, capable, tmp_path):
    rc, err = _run(capsys, *GOOD, "--class", "NO_SUCH_CLASS", "--output", str(tmp_path))
    assert rc == 43 and "NO_SUCH_CLASS" in err, err


def test_config_space_without_disk_config(capsys, capable, tmp_path):
    cspace = tmp_path / "cspace"
    shutil.copytree(CSPACE, cspace)
    (cspace / "disk_config" / "BIOS").rename(cspace / "disk_config" / "OTHER")
    (cspace / "class" / "BIOS.var").write_text("# known, but no disk_config\n")
    rc, err = _run(capsys, *GOOD, "--config-space", str(cspace), "--output", str(tmp_path / "out"))
    assert rc == 43 and "disk_config" in err, err


@pytest.mark.parametrize("argv", [["--firmware", "uefi"], ["--arch", "arm64"]])
def test_uefi_needs_a_vm(capsys, capable, tmp_path, argv):
    rc, err = _run(capsys, "--release", "trixie", "--vendor", "generic", *argv, "--output", str(tmp_path))
    assert rc == 44 and len(err.splitlines()) == 1 and "--in-vm" in err, err


def test_in_vm_without_qemu_for_the_arch(capsys, capable, monkeypatch, tmp_path):
    monkeypatch.setattr(host.shutil, "which",
                        lambda prog: None if prog == "qemu-system-aarch64" else f"/usr/bin/{prog}")
    rc, err = _run(capsys, "--release", "bookworm", "--vendor", "generic", "--arch", "arm64",
                   "--in-vm", "--output", str(tmp_path))
    assert rc == 45 and len(err.splitlines()) == 1, err
    assert "--in-vm" in err and "apt-get install qemu-system-arm" in err, err
    assert not list(tmp_path.iterdir())


def test_in_vm_needs_no_root_nor_fai_on_the_host(capsys, capable, monkeypatch, tmp_path):
    """The VM has FAI; the host needs only QEMU and what reads the finished image."""
    monkeypatch.setattr(host.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(host.shutil, "which", lambda prog: None if prog.startswith("fai")
                        or prog in ("debootstrap", "setup-storage") else f"/usr/bin/{prog}")
    host.check_vm_host(BuildSpec("bookworm", "genericcloud", "amd64"))
    monkeypatch.setattr(host.shutil, "which", lambda prog: None if prog == "debugfs" else "/x")
    with pytest.raises(host.MissingDependencyError, match="e2fsprogs"):
        host.check_vm_host(BuildSpec("bookworm", "genericcloud", "amd64"))


def test_classes_and_name():
    spec = BuildSpec("bookworm", "genericcloud", "amd64", extra_classes=("DEFECT_SSH_PASSWORD",))
    assert spec.firmware == "bios"
    assert spec.classes() == ["DEBIAN", "CLOUD", "BOOKWORM", "GENERICCLOUD", "AMD64", "BIOS", "GRUB_PC",
                              "DEFECT_SSH_PASSWORD", "CLEANUP"]
    assert spec.name == "debian-12-genericcloud-amd64-defect-ssh-password"
    assert BuildSpec("trixie", "ec2", "arm64").classes()[5:7] == ["UEFI", "GRUB_EFI"]


def test_shipped_config_space_defines_every_class():
    for release in ("bookworm", "trixie"):
        for vendor in ("generic", "genericcloud", "nocloud", "ec2", "gce", "azure"):
            for arch in ("amd64", "arm64"):
                host.check_config_space(CSPACE, BuildSpec(release, vendor, arch).classes())


def test_fai_command_line(tmp_path):
    cmd = fai.command(BuildSpec("bookworm", "genericcloud", "amd64"), CSPACE, tmp_path / "x.raw")
    assert cmd[0] == "fai-diskimage"
    assert "DEBIAN,CLOUD,BOOKWORM,GENERICCLOUD,AMD64,BIOS,GRUB_PC,CLEANUP" in cmd


def test_first_error_names_the_task_and_apt_error():
    log = ("Calling task_instsoft\nE: Unable to locate package dct-no-such-package\n"
           "Exit code task_debconf: 0\nExit code task_instsoft: 620\n")
    assert fai.first_error(log) == "task instsoft exited 620; Unable to locate package dct-no-such-package"

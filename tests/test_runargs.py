"""One builder of pytest's arguments for `run`, `demo` and `pipeline`."""

from __future__ import annotations

from pathlib import Path

from debian_cloud_tests import cli
from debian_cloud_tests.junitform import JUNIT_FAMILY
from debian_cloud_tests.runargs import pytest_argv


def test_the_target_junit_form_and_artefacts_then_what_the_user_gives() -> None:
    argv = pytest_argv("qemu", "d.qcow2", Path("r.xml"), Path("art"), arch="arm64", extra=["-k", "bvt"])
    assert argv[:6] == ["-p", "no:cacheprovider", "--provider=qemu", "--image=d.qcow2",
                        "--junitxml=r.xml", "--artifacts-dir=art"]
    assert f"junit_family={JUNIT_FAMILY}" in argv and "--arch=arm64" in argv
    assert not any(a.startswith("--firmware") for a in argv)
    assert argv[-2:] == ["-k", "bvt"]  # last: the user's options win


def test_run_passes_its_options_and_the_users_after_the_separator() -> None:
    args = cli.build_parser().parse_args(["run", "--image=d.qcow2", "--firmware=uefi", "--", "-k", "x"])
    argv = cli._pytest_argv(args, "qemu", "d.qcow2", Path("r.xml"), Path("art"), ["--region=r"])
    assert argv == pytest_argv("qemu", "d.qcow2", Path("r.xml"), Path("art"), firmware="uefi",
                               extra=["--region=r", "-k", "x"])

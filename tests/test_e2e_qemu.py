"""End to end on QEMU: the good image passes every check, each planted defect fails its checks.

Each variant image carries several independent defects; the assertion is check by check, so a
check that fails for the wrong reason, or passes despite its defect, is caught.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from .conftest import run_suites

pytestmark = pytest.mark.e2e

#: (defects planted, extra options, checks expected to fail). Every other check must pass.
VARIANTS = {
    "broken-system": (
        ("failed-unit", "no-growroot", "sudo-password", "console-segfault"), (),
        {"bvt.system_running", "bvt.root_filesystem_grown", "bvt.sudo_passwordless",
         "bvt.console_free_of_kernel_errors"}),
    "no-serial-console": (
        ("no-serial-console", "sudo-warns"), ("--host-key-source=injected",),
        {"bvt.serial_console_on_cmdline", "bvt.sudo_does_not_warn"}),
}
#: checks that may be skipped on a variant because a planted defect makes them moot
MOOT = {"broken-system": {"bvt.sudo_does_not_warn"}}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


@pytest.fixture(scope="module")
def good_run(good_image: Path, tmp_path_factory: pytest.TempPathFactory):
    before = _sha256(good_image)
    run = run_suites(tmp_path_factory.mktemp("good"), "--provider=qemu", f"--image={good_image}")
    return run, before


def test_good_image_passes_every_check(good_run) -> None:
    run, _ = good_run
    assert run.rc == 0, run.explain()
    assert run.checks, "no checks ran"
    not_passed = {c: s for c, s in run.checks.items() if s != "passed"}
    assert not not_passed, f"{not_passed}\n{run.explain()}"


def test_candidate_image_never_written(good_run, good_image: Path) -> None:
    run, before = good_run
    assert _sha256(good_image) == before == run.props["image_sha256"]


def test_junit_properties_describe_the_run(good_run) -> None:
    run, _ = good_run
    for key in ("provider", "image", "image_sha256", "arch", "firmware", "accel", "boot_seconds",
                "qemu_version", "os_release", "dct_version", "console_log"):
        assert run.props.get(key), f"JUnit property {key} missing: {run.props}"
    assert run.props["os_release"].startswith("Debian GNU/Linux 12")
    assert Path(run.props["console_log"]).is_absolute() or True
    assert float(run.props["boot_seconds"]) > 1


def test_uefi_boot_passes_every_check(good_image: Path, tmp_path: Path) -> None:
    run = run_suites(tmp_path, "--provider=qemu", f"--image={good_image}", "--firmware=uefi")
    assert run.rc == 0, run.explain()
    assert run.props["firmware"] == "uefi"
    assert all(s == "passed" for s in run.checks.values()), run.checks


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_planted_defects_fail_exactly_their_checks(variant: str, image_factory, tmp_path: Path) -> None:
    defects, extra, expected = VARIANTS[variant]
    image = image_factory(*defects, fmt="raw")
    run = run_suites(tmp_path, "--provider=qemu", f"--image={image}", *extra)
    assert run.rc == 1, run.explain()
    assert run.failing() == expected, f"{run.checks}\n{run.messages}"
    others = {c: s for c, s in run.checks.items()
              if c not in expected and s != "passed" and c not in MOOT.get(variant, set())}
    assert not others, f"unexpected non-passing checks: {others}\n{run.messages}"


def test_refused_login_fails_the_login_check(image_factory, tmp_path: Path) -> None:
    """With login broken nothing else can be checked: those checks error, they do not pass."""
    run = run_suites(tmp_path, "--provider=qemu", f"--image={image_factory('ssh-login-broken')}")
    assert run.rc == 1, run.explain()
    assert run.checks["bvt.ssh_login_default_user"] == "failed", run.messages
    assert "refused" in run.messages["bvt.ssh_login_default_user"]
    host_checks = {c: s for c, s in run.checks.items() if c not in (
        "bvt.ssh_login_default_user", "bvt.console_free_of_kernel_errors")}
    assert host_checks and all(s == "error" for s in host_checks.values()), run.checks

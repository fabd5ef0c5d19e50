"""The upgrade suite on QEMU guests, against a signed repository built in the run (-security's
kernel for an image of bookworm's own, and a rebuilt netbase) and served to each guest alone: a
good image upgrades, boots the new kernel and comes back the same machine; images and
repositories with the defects the suite exists for fail exactly their checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from debian_cloud_tests.plugin import suites_dir
from debian_cloud_tests.testimage import upgrade_repo
from debian_cloud_tests.testimage.builder import Recipe

from .conftest import run_suites

UPGRADE = str(suites_dir() / "upgrade")
#: images of bookworm's point-release kernel, upgraded to -security's: the common path, and a
#: kernel QEMU 7.2's TCG runs (it double-faults bookworm's backports kernel, 6.12, at boot)
RELEASE_KERNEL = Recipe(kernel="release")
CHECKS = {"upgrade.full_upgrade_succeeds", "upgrade.comes_back_after_upgrade",
          "upgrade.boots_the_new_kernel", "upgrade.no_failed_units_after_upgrade",
          "upgrade.host_keys_kept_after_upgrade", "upgrade.machine_id_kept_after_upgrade",
          "upgrade.cloud_init_per_instance_not_rerun", "upgrade.bvt_passes_again_after_upgrade"}


def _upgrade_run(tmp_path: Path, image: Path, repo: upgrade_repo.UpgradeRepo):
    # the suite alone, and the console scan every run ends with
    return run_suites(tmp_path, "--provider=qemu", f"--image={image}", *repo.options(),
                      select=UPGRADE, timeout=1500)


@pytest.mark.matrix  # an upgrade and a reboot, 5 to 8 minutes under TCG: CI runs the failing package
@pytest.mark.cost(330)
def test_good_image_upgrades_and_boots_the_new_kernel(image_factory, tmp_path: Path) -> None:
    repo = upgrade_repo.build(RELEASE_KERNEL)
    run = _upgrade_run(tmp_path, image_factory(fmt="raw", kernel="release"), repo)
    assert run.rc == 0, run.explain()
    assert {c for c, s in run.checks.items() if s == "passed"} >= CHECKS, run.digest()
    assert run.props.get("kernel_after") == repo.kernel, run.props
    assert run.props.get("kernel_before") != repo.kernel
    assert "linux-image-cloud-amd64" in run.props.get("upgrade_unpacked", ""), run.props


def _every_check_else_cannot(run, failing: set[str]) -> None:
    """*failing* fail on their defects; the other checks pass or fail as "cannot check" (what
    they read never came to be), none errors."""
    assert not run.errors(), run.digest()
    assert failing <= run.failing(), run.digest()
    wrong = {c: run.messages.get(c, "") for c in run.failing() - failing
             if not run.messages.get(c, "").removeprefix("Failed: ").startswith("cannot check")}
    assert not wrong, wrong


#: planted image, repository kind, the checks that fail on their defect, what their reports say
VARIANTS = {
    "keeps-old-kernel": (("boot-loader-ignores-kernel-upgrades", "apt-hook-empties-machine-id",
                          "fails-after-reboot"), "good",
                         {"upgrade.boots_the_new_kernel": "not the newest installed",
                          "upgrade.machine_id_kept_after_upgrade": "machine-id changed",
                          "upgrade.no_failed_units_after_upgrade": "second-boot-fails",
                          "upgrade.bvt_passes_again_after_upgrade": "bvt.system_running"}),
    "loses-root-disk": (("initramfs-without-disk-driver",), "good",
                        {"upgrade.comes_back_after_upgrade": "stopped for good"}),
    "reruns-cloud-init": (("apt-hook-cleans-cloud-init",), "good",
                          {"upgrade.host_keys_kept_after_upgrade": "another host key",
                           "upgrade.cloud_init_per_instance_not_rerun": "host keys again"}),
    "failing-package": ((), "failing-package",
                        {"upgrade.full_upgrade_succeeds": "netbase"}),
}
VARIANT_COST = {"keeps-old-kernel": 330, "loses-root-disk": 300, "reruns-cloud-init": 330,
                "failing-package": 150}


#: what CI's time allows (each other variant is an upgrade and a reboot more): the full matrix
IN_CI = {"failing-package"}


@pytest.mark.parametrize("variant", [
    pytest.param(v, marks=(pytest.mark.cost(VARIANT_COST[v]),
                           *(() if v in IN_CI else (pytest.mark.matrix,))))
    for v in VARIANTS])
def test_upgrade_defects_fail_their_checks(variant: str, image_factory, tmp_path: Path) -> None:
    defects, kind, expected = VARIANTS[variant]
    if kind == "failing-package":  # no kernel to upgrade: the image every other test boots
        image, repo = image_factory(*defects), upgrade_repo.build(Recipe(), kind)
    else:
        image, repo = (image_factory(*defects, fmt="raw", kernel="release"),
                       upgrade_repo.build(RELEASE_KERNEL, kind))
    run = _upgrade_run(tmp_path, image, repo)
    assert run.rc == 1, run.explain()
    _every_check_else_cannot(run, set(expected))
    wrong = {c: run.report(c) for c, says in expected.items() if says not in run.report(c)}
    assert not wrong, wrong

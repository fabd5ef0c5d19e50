"""The catalogue is generated from the suites, and the published copy in docs/ is current."""

from __future__ import annotations

from pathlib import Path

from debian_cloud_tests import catalogue

DOC = Path(__file__).resolve().parent.parent / "docs" / "checks.md"


def test_every_check_has_an_id_and_says_what_it_verifies() -> None:
    checks = catalogue.collect()
    assert len(checks) >= 150
    ids = [c.id for c in checks]
    assert len(ids) == len(set(ids)), "duplicate check ids"
    missing = [c.id for c in checks if not c.verifies]
    assert not missing, f"checks without a docstring: {missing}"
    assert {c.suite for c in checks} >= {"bvt", "cloud_init", "config", "network", "metadata",
                                          "reboot", "uniqueness"}


def test_docs_catalogue_is_current() -> None:
    expected = catalogue.render(catalogue.collect(), "markdown") + "\n"
    assert DOC.read_text() == expected, "docs/checks.md is stale: debian-cloud-tests checks " \
        "--format markdown > docs/checks.md"


UPGRADE_CONTROLS = "test_upgrade_e2e.py::test_upgrade_defects_fail_their_checks"
PIPELINE = "test_pipeline_e2e.py::test_fai_image_passes_the_gated_suites_and_is_published"

#: Checks whose negative control is not a planted image variant, and the test that is.
CONTROLS_ELSEWHERE = {
    "bvt.ssh_login_default_user": "test_e2e_qemu.py::test_refused_login_fails_the_login_check",
    # the FAI-built ec2 image booted as an Azure VM
    "cloud_init.datasource_expected": PIPELINE,
    "metadata.provisioning_reported_ready": PIPELINE,
    "metadata.arch_matches":
        "test_provider_ssh.py::test_arch_check_compares_the_host_with_the_declared_platform",
    "bvt.booted_in_uefi_mode": "test_provider_ssh.py::test_uefi_checks_fail_on_a_host_without_efi",
    "bvt.esp_mounted": "test_provider_ssh.py::test_uefi_checks_fail_on_a_host_without_efi",
    # a host booted without Secure Boot, declared booted with it (no VM boots without it when asked)
    "bvt.secure_boot_enabled":
        "test_secure_boot.py::test_secure_boot_checks_fail_on_a_host_booted_without_it",
    "bvt.kernel_locked_down":
        "test_secure_boot.py::test_secure_boot_checks_fail_on_a_host_booted_without_it",
    "config.apt_sources_deb822": "test_e2e_qemu.py::test_trixie_one_line_sources_and_invalid_user_data_fail",
    # the instance type's promise is the run's (--instance-types), not a planted image defect
    "gpu.driver_bound": "test_gpu.py::test_a_display_the_kernel_cannot_drive_fails_driver_bound",
    # it needs a -security mirror, which only the walled guest's test serves
    "config.no_pending_security_updates":
        "test_guest_network_wall.py::test_a_missed_security_update_fails_behind_the_wall",
    # planted images and repositories upgraded from, each check failing on its defect
    "upgrade.full_upgrade_succeeds": UPGRADE_CONTROLS,
    "upgrade.comes_back_after_upgrade": UPGRADE_CONTROLS,
    "upgrade.boots_the_new_kernel": UPGRADE_CONTROLS,
    "upgrade.no_failed_units_after_upgrade": UPGRADE_CONTROLS,
    "upgrade.host_keys_kept_after_upgrade": UPGRADE_CONTROLS,
    "upgrade.machine_id_kept_after_upgrade": UPGRADE_CONTROLS,
    "upgrade.cloud_init_per_instance_not_rerun": UPGRADE_CONTROLS,
    "upgrade.bvt_passes_again_after_upgrade": UPGRADE_CONTROLS,
    # a platform's limit, not an image's defect: the peer link rate-limited below the floor
    "network_perf.throughput_above_floor":
        "test_network_perf_e2e.py::test_a_rate_limited_link_fails_naming_the_figure",
}


def test_every_check_has_a_negative_control() -> None:
    """A check is trusted only once seen failing: each is expected to fail in a planted variant
    of the e2e test, on a planted host of the ssh provider's tests, or in a named test."""
    from . import test_e2e_qemu, test_provider_ssh

    controlled = set(CONTROLS_ELSEWHERE)
    for *_, expected_failures in test_e2e_qemu.VARIANTS.values():
        controlled |= set(expected_failures)
    controlled |= {check for check, *_, outcome in test_provider_ssh.PLANTED if outcome == "failed"}
    ids = {c.id for c in catalogue.collect()}
    assert not ids - controlled, f"checks never shown to fail: {sorted(ids - controlled)}"
    assert not controlled - ids, f"controls for checks that do not exist: {sorted(controlled - ids)}"
    here = Path(__file__).resolve().parent
    for where in CONTROLS_ELSEWHERE.values():
        module, test = where.split("::")
        assert f"def {test}(" in (here / module).read_text(), f"{where} does not exist"

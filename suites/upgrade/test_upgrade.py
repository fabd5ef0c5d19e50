"""A user's first act on a new instance: `apt-get full-upgrade` and a reboot.  The upgrade
succeeds, the machine boots the newest kernel it now has, and comes back with the same identity,
cloud-init's per-instance work not done again, no failed units and the basic checks passing."""

from __future__ import annotations

import pytest

from debian_cloud_tests.facts import gather
from debian_cloud_tests.upgrade.steps import UpgradeOutcome, reran_per_instance, run_upgrade

from ..bvt import test_bvt, test_filesystems, test_kernel

#: bvt's checks that hold on any boot, asked again of the upgraded machine
BVT_AGAIN = (test_bvt.test_system_running, test_bvt.test_sudo_passwordless,
             test_bvt.test_serial_console_on_cmdline, test_bvt.test_serial_getty_active,
             test_bvt.test_journal_records_this_boot, test_bvt.test_no_ordering_cycles,
             test_bvt.test_no_failed_mounts, test_bvt.test_root_filesystem_grown,
             test_filesystems.test_fstab_valid, test_kernel.test_kernel_root_by_stable_name,
             test_kernel.test_kernel_not_tainted, test_kernel.test_no_reboot_pending)
BVT_PROBES = (*test_bvt.PROBES, *test_filesystems.PROBES, *test_kernel.PROBES)


@pytest.fixture(scope="module")
def upgraded(dct_run, instance, facts) -> UpgradeOutcome:
    """The upgrade and its reboot, once; every other suite read the machine first."""
    source = dct_run.spec.upgrade
    if source is None:
        pytest.skip("not applicable: no --upgrade given (the upgrade changes the machine and "
                    "takes minutes: --upgrade own, or a repository, asks for it)")
    facts.wait()
    return run_upgrade(instance, source, instance.machine.facts.extra.get("upgrade_repo_url"),
                       dct_run.spec.boot_timeout)


def _upgraded_and_back(outcome: UpgradeOutcome) -> None:
    """Fail as "cannot check" where an earlier step stopped the sequence."""
    if not outcome.upgraded:
        pytest.fail(f"cannot check: the upgrade from {outcome.source} did not complete: "
                    f"{outcome.error}", pytrace=False)
    if not outcome.back:
        pytest.fail(f"cannot check: the machine did not come back from the reboot after the "
                    f"upgrade: {outcome.error}", pytrace=False)


def test_full_upgrade_succeeds(upgraded: UpgradeOutcome, request: pytest.FixtureRequest) -> None:
    """`apt-get update` and `apt-get full-upgrade` succeed non-interactively and leave dpkg's
    database consistent (`dpkg --audit` silent): no held package, failing maintainer script or
    configuration prompt stands in the way."""
    if upgraded.unpacked:
        request.node.user_properties.append(("upgrade_unpacked", "; ".join(upgraded.unpacked)))
    if upgraded.apt_seconds is not None:
        request.node.user_properties.append(("upgrade_apt_seconds", upgraded.apt_seconds))
    assert upgraded.failed_step not in ("update", "upgrade"), (
        f"upgrading from {upgraded.source}: {upgraded.error}")
    assert not upgraded.audit, f"after the upgrade `dpkg --audit` reports:\n{upgraded.audit[:600]}"


def test_comes_back_after_upgrade(upgraded: UpgradeOutcome, request: pytest.FixtureRequest) -> None:
    """After the upgrade the machine reboots and answers again over SSH, with the host keys it
    had: the new kernel's initramfs finds the root disk, the boot loader finds the kernel."""
    if not upgraded.upgraded:
        pytest.fail(f"cannot check: the upgrade did not complete: {upgraded.error}", pytrace=False)
    reboot = upgraded.reboot
    if reboot is not None and reboot.seconds is not None:
        request.node.user_properties.append(("upgrade_reboot_seconds", round(reboot.seconds, 1)))
    assert reboot is not None and reboot.came_back, (
        f"the machine did not come back from the reboot after the upgrade: {upgraded.error}; an "
        "initramfs without the root disk's driver (MODULES=list or dep built elsewhere), or a "
        "boot loader that lost the kernel, are the usual causes")


def test_boots_the_new_kernel(upgraded: UpgradeOutcome, request: pytest.FixtureRequest) -> None:
    """After the reboot the running kernel is the newest one installed: the boot loader follows
    kernel upgrades (update-grub from /etc/kernel/postinst.d), as a security fix needs."""
    _upgraded_and_back(upgraded)
    before, after = upgraded.before, upgraded.after
    assert before is not None and after is not None
    request.node.user_properties.append(("kernel_before", before.kernel))
    request.node.user_properties.append(("kernel_after", after.kernel))
    if after.newest_kernel in ("", before.newest_kernel) and before.kernel == after.kernel:
        pytest.skip(f"not applicable: the upgrade installed no kernel newer than {before.kernel}")
    assert after.kernel == after.newest_kernel, (
        f"after the upgrade and a reboot the machine runs kernel {after.kernel}, not the newest "
        f"installed, {after.newest_kernel or '(none found)'}: the boot loader does not follow "
        "kernel upgrades (zz-update-grub in /etc/kernel/postinst.d, grub.cfg where GRUB reads it)")


def test_no_failed_units_after_upgrade(upgraded: UpgradeOutcome) -> None:
    """The upgraded system comes back `running`, with no failed units."""
    _upgraded_and_back(upgraded)
    reboot = upgraded.reboot
    assert reboot is not None
    assert reboot.system_state == "running" and not reboot.failed_units, (
        f"after the upgrade and reboot the system is {reboot.system_state!r}; failed: "
        f"{reboot.failed_units}")


def test_host_keys_kept_after_upgrade(upgraded: UpgradeOutcome) -> None:
    """The upgraded machine presents the SSH host keys it had: an upgrade must not regenerate them."""
    if not upgraded.upgraded:
        pytest.fail(f"cannot check: the upgrade did not complete: {upgraded.error}", pytrace=False)
    reboot = upgraded.reboot
    assert reboot is not None and not reboot.keys_changed, (
        f"after the upgrade and reboot {reboot.error if reboot else ''}: host keys are made once "
        "per instance; something in the upgrade or the next boot made new ones")
    if not reboot.came_back:
        pytest.fail(f"cannot check: {upgraded.error}", pytrace=False)


def test_machine_id_kept_after_upgrade(upgraded: UpgradeOutcome) -> None:
    """/etc/machine-id is the same after the upgrade and reboot (journal, DHCP client id and
    systemd's per-machine state hang on it)."""
    _upgraded_and_back(upgraded)
    before, after = upgraded.before, upgraded.after
    assert before is not None and after is not None
    assert after.machine_id == before.machine_id, (
        f"the machine-id changed across the upgrade and reboot ({before.machine_id!r} -> "
        f"{after.machine_id!r}): something empties /etc/machine-id after the first boot")


def test_cloud_init_per_instance_not_rerun(upgraded: UpgradeOutcome) -> None:
    """cloud-init does not run its per-instance modules again after the upgrade (same instance
    id, same per-instance semaphores, no host keys printed again): a re-run replaces host keys,
    users' keys and configuration that the instance's owner may have changed."""
    if not upgraded.upgraded:
        pytest.fail(f"cannot check: the upgrade did not complete: {upgraded.error}", pytrace=False)
    again = reran_per_instance(upgraded)
    assert again is None, f"after the upgrade and reboot {again}: cloud-init's state in " \
        "/var/lib/cloud must survive upgrades (no `cloud-init clean` or state removal in hooks)"
    if not upgraded.back:
        pytest.fail(f"cannot check: {upgraded.error}", pytrace=False)


def test_bvt_passes_again_after_upgrade(upgraded: UpgradeOutcome, instance) -> None:
    """bvt's checks that hold on every boot (system running, sudo, serial console and getty,
    journal, mounts, fstab, root by stable name, kernel not tainted, no reboot pending) pass on
    the upgraded machine."""
    _upgraded_and_back(upgraded)
    facts = gather(instance.host.backend.client, BVT_PROBES)
    failed = []
    for check in BVT_AGAIN:
        try:
            check(facts)
        except (AssertionError, pytest.fail.Exception) as exc:
            failed.append(f"bvt.{check.__name__.removeprefix('test_')}: {str(exc).splitlines()[0][:300]}")
        except pytest.skip.Exception:
            continue
    assert not failed, "after the upgrade and reboot:\n" + "\n".join(failed)

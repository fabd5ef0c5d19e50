"""End to end on QEMU: the good image passes every check, each planted defect fails its checks.

Each variant image carries several independent defects; the assertion is check by check, so a
check that fails for the wrong reason, or passes despite its defect, is caught.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from debian_cloud_tests.errors import BootError
from debian_cloud_tests.plugin import suites_dir
from debian_cloud_tests.testimage.builder import Recipe

from .conftest import TEST_SHAPE, mbr_disk, run_suites

#: instance-type tables of the tests' own
INSTANCE_TYPES = Path(__file__).parent / "instance-types"

#: skips that are fine on any image: the platform, not the image, lacks the feature
SKIP_OK = ("not applicable",)

pytestmark = pytest.mark.e2e

CONFIG_DEFECTS = (
    "no-apt-sources", "apt-build-proxy", "dpkg-half-configured", "uu-disabled", "timesync-masked",
    "no-locale", "timezone-not-utc", "root-password", "empty-password-user", "sshd-insecure",
    "dsa-host-key", "baked-authorized-keys", "shell-history", "baked-machine-id",
    "world-writable-etc", "tmp-not-sticky", "weak-sysctls", "extra-listener",
    "stale-cloud-init-state", "host-keys-baked", "loose-permissions", "timers-disabled",
    "baked-nocloud-seed", "host-key-readable", "private-key-baked", "swap-file", "core-dumps-left",
    "profile-umask")
BOOT_NET_DEFECTS = (
    "static-network", "ordering-cycle", "failed-mount", "cloud-init-error", "schema-invalid",
    "hostname-preserved", "cmdline-limits", "write-files-dropped", "keys-not-on-console",
    "ipv6-disabled")
SYSCTLS = ("fs.protected_fifos", "fs.protected_hardlinks", "fs.protected_regular",
           "fs.protected_symlinks", "kernel.dmesg_restrict", "kernel.randomize_va_space",
           "net.ipv4.tcp_syncookies", "kernel.unprivileged_bpf_disabled", "fs.suid_dumpable",
           "net.ipv4.conf.all.accept_source_route", "net.ipv6.conf.all.accept_source_route",
           "net.ipv4.icmp_echo_ignore_broadcasts", "net.ipv4.icmp_ignore_bogus_error_responses",
           "kernel.perf_event_paranoid", "net.ipv4.ip_forward", "net.ipv4.conf.all.accept_local",
           "net.ipv4.conf.all.route_localnet", "net.ipv6.conf.default.accept_source_route",
           "vm.mmap_min_addr")
SSHD = ("kbdinteractiveauthentication", "passwordauthentication", "permitemptypasswords",
        "permitrootlogin", "pubkeyauthentication", "hostbasedauthentication", "ignorerhosts",
        "permituserenvironment", "strictmodes", "usedns", "permittunnel", "gssapiauthentication",
        "maxauthtries", "logingracetime")
WEAK_ALGORITHMS = ("ciphers", "hostkeyalgorithms", "kexalgorithms", "macs", "pubkeyacceptedalgorithms")
FILE_MODES = ("/etc/shadow", "/etc/gshadow", "/etc/passwd", "/etc/group", "/etc/ssh/sshd_config", "/root",
              "/etc/sudoers", "/etc/sudoers.d", "/etc/shells", "/etc/sysctl.d", "/etc/crontab",
              "/etc/cron.d")
POLICY_DEFECTS = (
    "second-root", "duplicate-uid", "passwd-without-shadow", "group-without-gshadow",
    "weak-login-defs", "hosts-equiv", "sudo-nopasswd-baked", "setuid-find", "open-dir", "shm-suid",
    "loose-modes", "foreign-arch", "held-package", "policy-rc-d", "apt-pin-block", "apt-trusted",
    "apt-cache-left", "packages-purged", "dbus-machine-id-baked", "apt-source-malformed",
    "conffiles-set-aside", "files-without-owner", "apt-build-mirror", "writable-command",
    "duplicate-gid", "removed-not-purged", "old-kernel-left", "tmp-suid", "sudo-lax-defaults",
    "promiscuous-capture", "user-owned-shared-dir", "premade-home", "expired-local-ca",
    "journal-not-kept", "shared-home")
BOOT_CONFIG_DEFECTS = (
    "kernel-tainted", "reboot-pending", "root-by-device-name", "fstab-stale-entry",
    "serial-getty-masked", "journal-error", "cloud-init-lax", "cloud-init-modules-trimmed",
    "localhost-unmapped", "foreign-nic-rule", "mtu-pinned")
MODULES = ("growpart", "resizefs", "set_hostname", "update_etc_hosts", "ca_certs", "write_files",
           "scripts_user", "keys_to_console")
TIMERS = ("apt-daily.timer", "apt-daily-upgrade.timer", "fstrim.timer")

REBOOT = {f"reboot.{c}[{k}]" for c in ("comes_back", "host_keys_kept", "hostname_kept",
                                        "no_failed_units_after_reboot") for k in ("soft", "hard")}
#: a soft reboot refused (reboot.target masked), a hard one back with regenerated host keys
REBOOT_REFUSED = REBOOT - {"reboot.comes_back[hard]"}

#: variant -> (defects planted, extra options, suites to run (None: all), checks expected to fail).
#: Every other check must pass (or be skipped as not applicable on this platform).
VARIANTS = {
    "broken-system": (
        ("failed-unit", "no-growroot", "sudo-password", "console-segfault", "console-lockups"),
        ("--boot-budget=5",),
        "bvt",
        {"bvt.system_running", "bvt.root_filesystem_grown", "bvt.sudo_passwordless",
         "bvt.console_free_of_kernel_errors", "bvt.console_clean_at_end", "bvt.boot_within_budget",
         # sudo asks for a password: what only root can read cannot be checked, and says so
         "bvt.fstab_valid", "bvt.journal_free_of_errors", "bvt.no_ordering_cycles",
         "bvt.no_failed_mounts", "bvt.journal_records_this_boot"}),
    # no serial console, and a platform that promises a GPU it does not attach (a defect of the
    # platform, not of the image: the gpu suite fails on it the same)
    "no-serial-console": (
        ("no-serial-console", "sudo-warns"),
        ("--host-key-source=injected", f"--instance-type={TEST_SHAPE}",
         f"--instance-types={INSTANCE_TYPES / 'gpu-promised-not-attached.toml'}"), None,
        {"bvt.serial_console_on_cmdline", "bvt.sudo_does_not_warn", "network.hostname_resolves",
         "cloud_init.host_key_fingerprints_on_console", "cloud_init.etc_hosts_managed",
         "bvt.journal_free_of_errors",  # sudo logs each "unable to resolve host" as an error
         "gpu.devices_present", "gpu.driver_bound"}),
    "bad-config": (
        CONFIG_DEFECTS, (), None,
        {"config.apt_source[release]", "config.apt_source[updates]", "config.apt_source[security]",
         "config.no_build_proxy_left", "config.dpkg_audit_clean", "config.unattended_upgrades_enabled",
         "config.time_sync_active", "config.locale_set", "config.timezone_utc",
         "config.root_password_locked", "config.no_usable_passwords", "config.no_empty_passwords",
         *(f"config.sshd_setting[{k}]" for k in SSHD), "config.no_dsa_host_key",
         "config.no_authorized_keys_baked", "config.no_shell_history",
         "config.machine_id_generated_at_first_boot", "config.no_world_writable_files_in_etc",
         "config.tmp_sticky", *(f"config.sysctl_hardening[{k}]" for k in SYSCTLS),
         "config.listening_sockets_allowlisted", "cloud_init.no_state_from_image_build",
         *(f"config.file_mode[{p}]" for p in FILE_MODES),
         *(f"config.timer_enabled[{t}]" for t in TIMERS), "config.logs_rotated",
         "cloud_init.host_keys_generated_at_first_boot",
         "config.group_gshadow_consistent",  # the build account's group is not in /etc/gshadow
         "config.no_world_writable_dirs_without_sticky",  # /tmp not sticky
         # without a locale cloud-init's locale module fails, and with it cloud-config.service
         "cloud_init.status_done_without_errors", "cloud_init.log_free_of_warnings",
         "bvt.system_running",
         # a second instance of this image shares its baked host keys, machine-id and instance id
         "uniqueness.host_keys_unique", "uniqueness.machine_id_unique",
         "uniqueness.instance_id_unique", "metadata.instance_id_matches",
         "cloud_init.instance_data_present",
         # the build's host keys are kept on purpose (ssh_deletekeys: false)
         "cloud_init.image_host_keys_deleted",
         # cloud-config.service fails (see above), and systemd logs that as an error
         "bvt.journal_free_of_errors",
         *(f"config.sshd_no_weak_algorithms[{k}]" for k in WEAK_ALGORITHMS),
         "config.host_private_keys_private", "config.no_private_keys_baked", "config.no_swap",
         "config.no_core_dumps_left", "config.host_public_keys_root_owned",
         "config.no_world_writable_files",  # the world-writable file in /etc
         "config.login_shell_umask"}),
    "bad-boot-net": (
        # two vCPUs, so that the cmdline's maxcpus=1 hides one
        BOOT_NET_DEFECTS, ("--host-key-source=injected", "--instance-type=2x1024"), None,
        {"network.default_route", "network.dhcp_lease", "network.nameserver_configured",
         "network.dns_resolves",
         "network.mtu_matches_platform", "network.network_rendered_by_cloud_init",
         "network.no_leftover_interface_config", "network.hostname_resolves",
         "bvt.no_ordering_cycles", "bvt.no_failed_mounts", "bvt.system_running",
         # cloud-init.service fails on the failing bootcmd
         "bvt.console_free_of_kernel_errors", "bvt.console_clean_at_end",
         "bvt.sudo_does_not_warn", "cloud_init.status_done_without_errors",
         "cloud_init.log_free_of_warnings", "cloud_init.schema_valid",
         "cloud_init.host_key_fingerprints_on_console", "metadata.hostname_matches",
         "metadata.vcpus_match", "metadata.memory_matches", "metadata.user_data_applied",
         "network.ipv6_when_offered", "cloud_init.network_config_enabled",
         "config.cpu_mitigations_not_disabled",  # mitigations=off beside the limits
         "cloud_init.hostname_not_preserved", "cloud_init.module_enabled[write_files]",
         # the kernel and systemd log the cycle and the bad mount option as errors
         "bvt.journal_free_of_errors"}),
    # with a DSA key file that sshd never loads, as on Debian's official bookworm images (cloud-init
    # makes one when it generates the host keys itself): the DSA check passes
    "bad-policy": (
        (*POLICY_DEFECTS, "cloud-init-default-key-types"), (), None,
        {"config.only_root_has_uid_0", "config.no_duplicate_uids", "config.passwd_shadow_consistent",
         "config.group_gshadow_consistent", "config.login_umask", "config.password_hashing_strong",
         "config.no_rhosts_trust", "config.no_passwordless_sudo_baked",
         "config.setid_programs_allowlisted", "config.no_world_writable_dirs_without_sticky",
         "config.mount_options[/dev/shm]", "config.mount_options[/tmp]",
         "config.sudo_defaults_kept", "config.no_promiscuous_interfaces",
         "config.world_writable_dirs_system_owned", "config.home_files_owned_by_their_user",
         "config.no_expired_local_certificates", "config.home_dirs_writable_only_by_their_user",
         *(f"config.file_mode[{p}]" for p in ("/etc/ssh", "/boot/grub/grub.cfg")),
         "config.no_foreign_architectures", "config.no_held_packages", "config.no_policy_rc_d",
         "config.no_pin_blocking_updates", "config.apt_sources_authenticated",
         "config.apt_cache_clean", "config.no_dbus_machine_id_baked", "config.apt_update_works",
         # a malformed source stops apt reading any: the -security index cannot be fetched either
         "config.no_pending_security_updates",
         "config.no_conffile_leftovers", "config.no_files_without_owner",
         "config.no_build_mirror_left",
         *(f"config.package_installed[{p}]" for p in ("ca-certificates", "debian-archive-keyring",
                                                       "cloud-guest-utils")),
         # without cloud-guest-utils there is no growpart: the root is not grown
         "bvt.root_filesystem_grown",
         # apt's and dpkg's logrotate rules stay, with no logrotate to apply them
         "config.logs_rotated",
         "config.no_world_writable_files", "config.system_commands_root_owned",
         "config.no_duplicate_gids", "config.no_removed_packages_config_left",
         "config.no_kernel_older_than_the_booted_one",
         # the packages purged with --force-depends leave their dependants' dependencies unmet
         "config.no_broken_dependencies",
         # journald keeps nothing: the checks that read the journal cannot pass on nothing
         "bvt.journal_records_this_boot", "bvt.journal_free_of_errors", "bvt.no_ordering_cycles",
         "bvt.no_failed_mounts"}),
    # boot configuration defects, and a reboot the guest refuses whose hard reset comes back with
    # new host keys (the reboot suite fails on those alone: the two sets are disjoint)
    "bad-boot-config": (
        (*BOOT_CONFIG_DEFECTS, "reboot-masked", "host-keys-regenerated-on-reboot"),
        ("--host-key-source=injected", "--image-type=generic"), None,
        {*REBOOT_REFUSED, "bvt.kernel_flavour", "bvt.kernel_root_by_stable_name", "bvt.kernel_not_tainted",
         "bvt.no_reboot_pending", "bvt.fstab_valid", "bvt.fstab_root_by_stable_name",
         "bvt.serial_getty_active", "bvt.journal_free_of_errors", "cloud_init.root_login_disabled",
         "cloud_init.image_host_keys_deleted", *(f"cloud_init.module_enabled[{m}]" for m in MODULES),
         "cloud_init.password_login_not_enabled",
         "network.localhost_resolves", "network.no_interface_rules_for_other_machines",
         "network.mtu_matches_platform",  # pinned below what the platform's DHCP offers
         # what the dropped modules did: grow the root, write /etc/hosts, print the host keys,
         # apply user-data (cloud-init sets the hostname early without its module too)
         "bvt.root_filesystem_grown", "network.hostname_resolves",
         "bvt.sudo_does_not_warn", "cloud_init.host_key_fingerprints_on_console",
         "metadata.user_data_applied"}),
}
VARIANTS |= {
    "changes-on-reboot": (
        ("hostname-changes-on-reboot", "fails-after-reboot", "ssh-gone-after-crash",
         "oops-after-reboot"),
        # sshd never answers after the hard reset: the check gives up 60 s after the new boot's
        # login prompt, so the timeout only bounds a boot that never gets that far (a busy host
        # took over 140 s to the prompt)
        ("--boot-timeout=400",), "reboot",
        {"reboot.hostname_kept[soft]", "reboot.hostname_kept[hard]",  # renamed at every boot
         "reboot.no_failed_units_after_reboot[soft]", "reboot.no_failed_units_after_reboot[hard]",
         "reboot.comes_back[hard]", "reboot.host_keys_kept[hard]",  # sshd gone after the reset
         # the oops of the second boot: the scan at the end of the run reports it although only
         # the reboot suite was selected
         "bvt.console_clean_at_end"}),
}
#: suites that reboot or launch a second machine: only where a variant needs them (network_perf
#: runs where the table has a floor for the shape, as for bad-boot-net's 2x1024)
SLOW_SUITES = ("reboot", "uniqueness", "network_perf")
SLOW_SUITES_PROVEN = {"bad-config": ("uniqueness",), "bad-boot-config": ("reboot",)}

#: checks that may be skipped on a variant because a planted defect makes them moot
MOOT = {"broken-system": {"bvt.sudo_does_not_warn"}}
#: side effects that systemd shows on the console only sometimes (status output is racy): these
#: may fail with the variant's defects, and are proven deterministically by broken-system
CASCADE = {"bad-config": {"bvt.console_free_of_kernel_errors", "bvt.console_clean_at_end"}}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


#: the tests that read the one good run: on one worker, one after another
def reads_the_good_run(test: Callable[..., None]) -> Callable[..., None]:
    # In CI the good image's full run is the README's demo on a fresh Debian (test_fresh_install),
    # and each variant's run passes every check but its defects'.
    marks = (pytest.mark.matrix, pytest.mark.xdist_group("good-run"), pytest.mark.cost(200))
    for mark in marks:
        test = mark(test)
    return test


@pytest.fixture(scope="module")
def good_run(good_image: Path, tmp_path_factory: pytest.TempPathFactory):
    before = _sha256(good_image)
    run = run_suites(tmp_path_factory.mktemp("good"), "--provider=qemu", f"--image={good_image}",
                     "--image-type=genericcloud")  # the test image runs Debian's cloud kernel
    return run, before


@reads_the_good_run
def test_good_image_passes_every_check(good_run) -> None:
    run, _ = good_run
    assert run.rc == 0, run.explain()
    assert run.checks, "no checks ran"
    not_passed = {c: s for c, s in run.checks.items()
                  if s != "passed" and not run.messages.get(c, "").startswith(SKIP_OK)}
    assert not not_passed, f"{not_passed}\n{run.explain()}"


@reads_the_good_run
def test_candidate_image_never_written(good_run, good_image: Path) -> None:
    run, before = good_run
    assert _sha256(good_image) == before == run.props["image_sha256"]


@reads_the_good_run
def test_junit_properties_describe_the_run(good_run) -> None:
    run, _ = good_run
    for key in ("provider", "image", "image_sha256", "arch", "firmware", "accel", "boot_seconds",
                "qemu_version", "os_release", "dct_version", "console_log"):
        assert run.props.get(key), f"JUnit property {key} missing: {run.props}"
    assert run.props["os_release"].startswith("Debian GNU/Linux 12")
    assert float(run.props["boot_seconds"]) > 1
    # what the gate compares with the last published image, read by the checks' own gather
    assert json.loads(run.props["packages"]).get("openssh-server"), run.props["packages"][:300]
    assert "tcp/22" in json.loads(run.props["listening_sockets"])
    assert {"init", "modules-final"} <= set(json.loads(run.props["cloud_init_stage_seconds"]))
    # where the shared gather's time went, probe by probe: [start, seconds, CPU seconds]
    spans = json.loads(run.props["probe_seconds"])
    assert {"os_release", "dpkg_packages"} <= set(spans)
    assert all(secs >= 0 and cpu >= 0 for _, secs, cpu in spans.values())


@reads_the_good_run
def test_no_key_material_left_or_written(good_run) -> None:
    """No private key in the JUnit file or artefacts, and no run dir left in the temp dir."""
    run, _ = good_run
    assert run.workdir is not None
    for path in run.workdir.rglob("*"):
        if path.is_file():
            text = path.read_bytes()
            assert b"PRIVATE KEY" not in text, f"key material in {path}"
    assert run.props.get("console_log") and Path(run.props["console_log"]).exists()


def _watch_run_dirs(tmpdir: Path, seen: dict[str, int], stop: threading.Event) -> None:
    """Record the mode of every run dir and key file that appears under *tmpdir* while a run is
    going on (it removes them before it ends)."""
    while not stop.is_set():
        for path in [*tmpdir.glob("dct-run-*"), *tmpdir.glob("dct-run-*/id_*")]:
            with contextlib.suppress(OSError):  # gone between the glob and the stat
                seen[str(path.relative_to(tmpdir))] = path.stat().st_mode & 0o777
        stop.wait(0.2)


@pytest.mark.matrix
@pytest.mark.cost(120)
def test_failing_run_keeps_keys_private_and_writes_no_secret(good_image: Path,
                                                             tmp_path: Path) -> None:
    """A run that fails (so the guest's logs are collected too) over user-data holding a secret:
    while it runs its dir is 0700 and its private key 0600; afterwards both are gone, and no
    private key, key of the run, or user-data secret is in the JUnit file, the artefacts or the
    output."""
    secret = f"dct-user-secret-{uuid.uuid4().hex}"
    user_data = tmp_path / "user-data.yaml"
    user_data.write_text("#cloud-config\nwrite_files:\n  - path: /root/app-token\n"
                         f"    permissions: '0600'\n    content: {secret}\n")
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    seen: dict[str, int] = {}
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_run_dirs, args=(tmpdir, seen, stop), daemon=True)
    watcher.start()
    try:
        run = run_suites(tmp_path, "--provider=qemu", f"--image={good_image}",
                         f"--user-data={user_data}",
                         "--boot-budget=1",  # fails bvt.boot_within_budget: logs are collected
                         select=str(suites_dir() / "bvt"), env={"TMPDIR": str(tmpdir)})
    finally:
        stop.set()
        watcher.join()
    assert run.rc == 1 and run.checks.get("bvt.boot_within_budget") == "failed", run.explain()
    dirs = {name: mode for name, mode in seen.items() if "/" not in name}
    keys = {name: mode for name, mode in seen.items() if name.endswith("id_ed25519")}
    assert dirs and set(dirs.values()) == {0o700}, seen
    assert keys and set(keys.values()) == {0o600}, seen
    assert not list(tmpdir.iterdir()), "the run left files in TMPDIR"
    assert run.workdir is not None
    written = [p for p in run.workdir.rglob("*") if p.is_file() and p != user_data]
    assert any("artifacts" in p.parts for p in written), "no artefacts were collected"
    for path in written:
        text = path.read_bytes()
        assert b"PRIVATE KEY" not in text, f"key material in {path}"
        assert secret.encode() not in text, f"the user-data secret is in {path}"
    assert secret not in run.stdout + run.stderr


# CI boots UEFI with the trixie image (below); this one is bookworm's UEFI run
@pytest.mark.matrix
@pytest.mark.cost(250)
def test_uefi_boot_passes_every_check(good_image: Path, tmp_path: Path) -> None:
    run = run_suites(tmp_path, "--provider=qemu", f"--image={good_image}", "--firmware=uefi",
                     f"--ignore={suites_dir() / 'uniqueness'}")
    assert run.rc == 0, run.explain()
    assert run.props["firmware"] == "uefi"
    assert all(s == "passed" or run.messages.get(c, "").startswith(SKIP_OK)
               for c, s in run.checks.items()), run.checks


@pytest.mark.cost(250)
def test_trixie_built_like_debian_passes_every_check(image_factory, tmp_path: Path) -> None:
    """The false-alarm control: Debian 13 as its official cloud images are made (netplan and
    systemd-networkd, resolved, the hostname resolved by NSS and no managed /etc/hosts, deb822
    sources with -backports, apt's cache directory removed), booted under UEFI, passes every
    check.  (UEFI reboots: bookworm's UEFI run, in the full matrix.)"""
    image = image_factory(release="trixie")
    run = run_suites(tmp_path, "--provider=qemu", f"--image={image}", "--image-type=genericcloud",
                     "--firmware=uefi", *(f"--ignore={suites_dir() / s}" for s in SLOW_SUITES))
    assert run.rc == 0, run.explain()
    assert run.props["os_release"].startswith("Debian GNU/Linux 13"), run.props
    assert run.props["firmware"] == "uefi", run.props
    assert run.checks.get("bvt.booted_in_uefi_mode") == "passed", run.checks
    others = {c: s for c, s in run.checks.items()
              if s != "passed" and not run.messages.get(c, "").startswith(SKIP_OK)}
    assert not others, f"{others}\n{run.messages}"
    assert run.checks["network.dhcp_lease"] == "passed"  # systemd-networkd's lease, not dhclient's


@pytest.mark.cost(150)
def test_trixie_one_line_sources_and_invalid_user_data_fail(image_factory, tmp_path: Path) -> None:
    """Negative controls on trixie: the deb822 check on the same sources in the one-line format
    apt 3 deprecates, and the schema check on user-data cloud-init's boot finds invalid (from
    23.4 boot validates the user-data alone, and `schema --system` runs only then, for the
    details).  The apt checks and the schema check alone: the rest is the control above's."""
    image = image_factory("one-line-sources", release="trixie", fmt="raw")
    user_data = tmp_path / "user-data"
    user_data.write_text("#cloud-config\npackage_update: often\n")
    run = run_suites(tmp_path, "--provider=qemu", f"--image={image}", "--image-type=genericcloud",
                     f"--user-data={user_data}",
                     f"{suites_dir() / 'cloud_init' / 'test_cloud_init.py'}::test_schema_valid",
                     select=str(suites_dir() / "config" / "test_apt.py"))
    assert run.rc == 1, run.explain()
    assert run.failing() == {"config.apt_sources_deb822", "cloud_init.schema_valid"}, (
        f"{run.checks}\n{run.messages}")
    assert "apt modernize-sources" in run.messages["config.apt_sources_deb822"]
    assert "package_update: 'often' is not of type 'boolean'" in run.messages["cloud_init.schema_valid"]


#: rough seconds each variant takes (a reboot that never comes back waits out its timeout)
VARIANT_COST = {"changes-on-reboot": 400, "bad-boot-config": 250, "bad-config": 250}


@pytest.mark.parametrize("variant", [pytest.param(v, marks=pytest.mark.cost(VARIANT_COST.get(v, 180)))
                                     for v in sorted(VARIANTS)])
def test_planted_defects_fail_exactly_their_checks(variant: str, image_factory, tmp_path: Path) -> None:
    defects, extra, suite, expected = VARIANTS[variant]
    image = image_factory(*defects, fmt="raw")
    select = str(suites_dir() / suite) if suite else None
    if not suite:
        extra = (*extra, *(f"--ignore={suites_dir() / s}" for s in SLOW_SUITES
                           if s not in SLOW_SUITES_PROVEN.get(variant, ())))
    run = run_suites(tmp_path, "--provider=qemu", f"--image={image}", *extra, select=select)
    assert run.rc == 1, run.explain()
    cascade = CASCADE.get(variant, set())
    assert not run.errors(), run.digest()
    assert expected <= run.failing() <= expected | cascade, run.digest()
    others = {c: s for c, s in run.checks.items() if c not in expected and s != "passed"
              and c not in MOOT.get(variant, set()) | cascade
              and not (s == "skipped" and run.messages.get(c, "").startswith(SKIP_OK))}
    assert not others, f"unexpected non-passing checks: {others}\n{run.messages}"
    # each fails on its defect, not because what it reads could not be read or understood
    unreadable = {c: run.messages.get(c, "") for c in expected
                  if any(w in run.messages.get(c, "") for w in UNREADABLE)}
    assert not unreadable, unreadable
    wrong = {c: run.report(c) for c, says in MESSAGES.get(variant, {}).items()
             if any(s not in run.report(c) for s in ((says,) if isinstance(says, str) else says))}
    assert not wrong, wrong


#: what some failures must say: the defect by name, not just a failed assertion
MESSAGES = {
    # each watchdog's report, by its pattern's name
    "broken-system": {"bvt.console_free_of_kernel_errors": (
        "[segfault]", "[soft lockup]", "[hard lockup]", "[rcu stall]", "[hung task]",
        "[watchdog timeout]")},
    "bad-boot-net": {"network.dns_resolves": "got no answer",
                     "network.dhcp_lease": "no default route"},
    "bad-boot-config": {"network.mtu_matches_platform": "platform MTU 1500",
                        # the soft reboot is refused; the hard one shows the new key
                        "reboot.host_keys_kept[hard]": "sshd presents another host key"},
    "bad-policy": {"config.no_build_mirror_left": "http://localhost:3142/"},
    "no-serial-console": {
        "gpu.devices_present": f"found 0 of 1 GPU(s) of PCI vendor 1af4, which {TEST_SHAPE} on qemu "
                               "promises (",
        "gpu.driver_bound": "only 0 found (see gpu.devices_present)"},
    "bad-config": {"config.dpkg_audit_clean": "half configured"},
    "changes-on-reboot": {"bvt.console_clean_at_end": "BUG: kernel NULL pointer dereference",
                          # the new boot reached its login prompt: no need to wait out the timeout
                          "reboot.comes_back[hard]": "shows a login prompt"},
}

#: how a check says it could not read or understand the guest (not a defect it found)
UNREADABLE = ("the guest's answer could not be read", "the guest cannot run what this check reads")

#: checks that need no login: the platform's view (console, boot time) still works
NO_LOGIN = {"bvt.console_free_of_kernel_errors", "bvt.boot_within_budget", "bvt.console_clean_at_end",
            "cloud_init.host_key_fingerprints_on_console",
            # read from cloud-init's final message on the console when login fails
            "cloud_init.datasource_expected"}


@pytest.mark.cost(120)
def test_refused_login_fails_the_login_check(image_factory, tmp_path: Path) -> None:
    """With login broken nothing else can be checked: those checks fail saying so (a bad state
    of the guest, not an error of the framework), they do not pass."""
    run = run_suites(tmp_path, "--provider=qemu", f"--image={image_factory('ssh-login-broken')}",
                     *(f"--ignore={suites_dir() / s}" for s in SLOW_SUITES))
    assert run.rc == 1, run.explain()
    assert run.checks["bvt.ssh_login_default_user"] == "failed", run.messages
    assert "refused" in run.messages["bvt.ssh_login_default_user"]
    assert {c: s for c, s in run.checks.items() if c in NO_LOGIN} == dict.fromkeys(NO_LOGIN, "passed")
    host_checks = {c: s for c, s in run.checks.items()
                   if c not in NO_LOGIN and c != "bvt.ssh_login_default_user"
                   and not (s == "skipped" and run.messages.get(c, "").startswith(SKIP_OK))}
    assert host_checks and all(s == "failed" for s in host_checks.values()), run.checks
    assert all("cannot log in to the machine" in run.messages[c] for c in host_checks), run.messages


NEEDS_QEMU_ARM = pytest.mark.skipif(not Path("/usr/bin/qemu-system-aarch64").exists(),
                                    reason="needs qemu-system-arm")


@pytest.mark.cost(45)
@NEEDS_QEMU_ARM
def test_arm64_platform_starts_aavmf_and_reads_its_console(tmp_path: Path) -> None:
    """CI's arm64 guest: the `virt` machine starts AAVMF from its flash, the PL011 console reaches
    the run, and the firmware looks for a boot loader on the image's disk (a blank one: it finds
    none, and the run says so in one line, quoting the console).  The boot of a bootstrapped arm64
    image below is the full matrix's: its root tree alone takes 8 to 12 minutes under qemu-user
    on a cold cache."""
    disk = mbr_disk(tmp_path / "blank-arm64.raw")  # the arch comes from the name
    run = run_suites(tmp_path, "--provider=qemu", f"--image={disk}", "--boot-timeout=30",
                     select=str(suites_dir() / "bvt"), timeout=180)
    assert run.rc == BootError.exit_code, run.explain()
    assert (run.props["arch"], run.props["firmware"]) == ("arm64", "uefi"), run.props
    out = run.stdout + run.stderr
    assert "Traceback" not in out, run.explain()
    assert "no SSH host keys on the console within 30s (last stage: firmware)" in out, run.explain()
    # AAVMF's own words: it ran, and tried the disk's boot entry
    assert "UEFI firmware" in out and "BdsDxe: failed to load Boot0001" in out, run.explain()


@pytest.mark.matrix  # its root tree is bootstrapped under qemu-user: CI runs the platform test above
@pytest.mark.cost(1100, cached=(150, Recipe(arch="arm64")))
@NEEDS_QEMU_ARM
def test_arm64_on_aavmf_passes_bvt(image_factory, tmp_path: Path) -> None:
    """arm64 on the `virt` machine with AAVMF, emulated on amd64 (the arch comes from the name)."""
    image = image_factory(arch="arm64")
    run = run_suites(tmp_path, "--provider=qemu", f"--image={image}", "--image-type=genericcloud",
                     select=str(suites_dir() / "bvt"))
    assert run.rc == 0, run.explain()
    assert (run.props["arch"], run.props["firmware"]) == ("arm64", "uefi")
    # every bvt check passes but those asked for by an option this run does not give (Secure Boot)
    asked_for = {"bvt.secure_boot_enabled", "bvt.kernel_locked_down"}
    assert run.checks and all(s == "passed" or (s == "skipped" and c in asked_for)
                              for c, s in run.checks.items()), run.checks
    # the emulated CPU signs pointers with QEMU's cheap algorithm, not an emulated QARMA5
    console = Path(run.props["console_log"]).read_text(errors="replace")
    assert "Address authentication (IMP DEF algorithm)" in console, console[:3000]

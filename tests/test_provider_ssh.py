"""The ssh provider against a real OpenSSH server on 127.0.0.1: the right key connects, a wrong
host key is refused (exit 34) in one line, bad options are one-line usage errors, and nothing is
ever created or destroyed."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from debian_cloud_tests.providers.ssh import SshProvider
from debian_cloud_tests.providers.ssh.gc import collect_garbage
from debian_cloud_tests.providers.ssh.provider import parse_host

from debian_cloud_tests import artifacts, interrupts, readiness, sshkeys
from debian_cloud_tests.errors import HostKeyMismatchError, UsageError
from debian_cloud_tests.plugin import suites_dir
from debian_cloud_tests.provider import get_provider

from .conftest import run_suites
from .fakes.sshd import Sshd, running_sshd, spec_for, unavailable


def wrong_host_key() -> str:
    return " ".join(sshkeys.generate("other").public_openssh.split()[:2])


def test_registry_finds_ssh() -> None:
    assert isinstance(get_provider("ssh"), SshProvider)


@pytest.mark.parametrize(("value", "expected"), [
    ("debian@192.0.2.10", ("debian", "192.0.2.10", 22)),
    ("192.0.2.10:2222", (None, "192.0.2.10", 2222)),
    ("admin@[2001:db8::1]:2200", ("admin", "2001:db8::1", 2200)),
    ("root@host.example", ("root", "host.example", 22)),
])
def test_parse_host(value: str, expected: tuple[str | None, str, int]) -> None:
    assert parse_host(value) == expected


@pytest.mark.parametrize("value", ["", "a@b@c", "host:99999", "user@"])
def test_bad_host_is_a_usage_error(value: str) -> None:
    with pytest.raises(UsageError, match="--host"):
        parse_host(value)


def test_connects_with_the_right_key_and_creates_nothing(sshd: Sshd, tmp_path: Path) -> None:
    provider = SshProvider()
    spec = provider.validate(spec_for(sshd, zone="lab-1"))
    assert spec.ssh_user == "root"
    machine = provider.launch(spec, tmp_path)
    ready = readiness.wait_for_ssh(machine, 15)
    assert ready.client is not None
    _, out, _ = ready.client.exec_command("echo hello")
    assert out.read().decode().strip() == "hello"
    ready.client.close()
    assert machine.facts.provider == "ssh" and machine.facts.zone == "lab-1"
    assert machine.facts.instance_id == "" and machine.facts.datasource == ""
    assert machine.console_log() == ""
    assert machine.destroy() == [] and collect_garbage() == []
    assert "StrictHostKeyChecking" not in machine.describe_access()


def test_host_key_from_a_known_hosts_file(sshd: Sshd, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {sshd.host_key}\n")
    provider = SshProvider()
    machine = provider.launch(provider.validate(spec_for(sshd, host_key=str(known))), tmp_path)
    ready = readiness.wait_for_ssh(machine, 15)
    assert ready.client is not None
    ready.client.close()


def test_a_recorded_stop_ends_the_wait_for_ssh(sshd: Sshd, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """An interrupt Python dropped (raised inside a destructor) is still recorded: the readiness
    wait stops at its next poll instead of waiting out the boot timeout."""
    stopped = threading.Event()
    stopped.set()
    monkeypatch.setattr(interrupts, "_requested", stopped)
    provider = SshProvider()
    machine = provider.launch(provider.validate(spec_for(sshd, host_key=wrong_host_key())), tmp_path)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        readiness.wait_for_ssh(machine, 60)
    assert time.monotonic() - started < 2


def test_known_hosts_without_the_host_is_a_usage_error(sshd: Sshd, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(f"192.0.2.1 {sshd.host_key}\n")
    with pytest.raises(UsageError, match=r"no key for \[127\.0\.0\.1\]:\d+"):
        SshProvider().validate(spec_for(sshd, host_key=str(known)))


def test_wrong_host_key_is_refused(sshd: Sshd, tmp_path: Path) -> None:
    provider = SshProvider()
    machine = provider.launch(provider.validate(spec_for(sshd, host_key=wrong_host_key())), tmp_path)
    with pytest.raises(HostKeyMismatchError, match="host key mismatch"):
        readiness.wait_for_ssh(machine, 15)


@pytest.mark.parametrize(("options", "match"), [
    ({"ssh_key": "/nonexistent/id_ed25519"}, "--ssh-key /nonexistent/id_ed25519: no such file"),
    ({"ssh_key": ""}, "--ssh-key PATH"),
    ({"host": ""}, "--host USER@ADDRESS"),
    ({"host_key": ""}, "--host-key is required"),
    ({"host_key": "ssh-ed25519 notbase64!"}, "not a valid ssh-ed25519 public key"),
    ({"host_key": "/nonexistent/known_hosts"}, "neither a public key"),
])
def test_bad_options_are_usage_errors(sshd: Sshd, options: dict[str, str], match: str) -> None:
    with pytest.raises(UsageError, match=match):
        SshProvider().validate(spec_for(sshd, **options))


def test_not_a_private_key(sshd: Sshd, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus"
    bogus.write_text("not a key\n")
    with pytest.raises(UsageError, match="not a usable private key"):
        SshProvider().validate(spec_for(sshd, ssh_key=str(bogus)))


def _plugin_args(server: Sshd, host_key: str, key: str) -> list[str]:
    return ["--provider=ssh", "--image=debian-12-genericcloud-amd64",
            f"--host=root@127.0.0.1:{server.port}", f"--ssh-key={key}", f"--host-key={host_key}",
            "--boot-timeout=20"]


def test_plugin_runs_a_check_on_the_host(sshd: Sshd, tmp_path: Path) -> None:
    select = f"{suites_dir()}/metadata/test_metadata.py::test_arch_matches"
    run = run_suites(tmp_path, *_plugin_args(sshd, sshd.host_key, str(sshd.client_key)),
                     select=select, timeout=120)
    assert run.rc in (0, 1), run.explain()
    assert run.checks.get("metadata.arch_matches") in ("passed", "failed"), run.explain()
    # the run's own properties come from the same gather, whichever checks were selected
    release = artifacts.os_release_fields(Path("/etc/os-release").read_text())
    assert run.props["os_release"] == release["PRETTY_NAME"], run.explain()
    dpkg = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "dpkg"], capture_output=True,
                          text=True, check=True).stdout
    assert json.loads(run.props["packages"])["dpkg"] == dpkg, run.explain()
    assert "cloud_init_stage_seconds" not in run.props  # this host has no cloud-init state


@pytest.mark.parametrize("declared", ["amd64", "arm64"])
def test_arch_check_compares_the_host_with_the_declared_platform(sshd: Sshd, tmp_path: Path,
                                                                 declared: str) -> None:
    """Negative control of metadata.arch_matches on a real host: declared as the other arch, the
    check fails naming both; declared as its own, it passes."""
    import subprocess

    own = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    if own not in ("amd64", "arm64"):
        pytest.skip(f"this host is {own or 'not Debian'}")
    select = f"{suites_dir()}/metadata/test_metadata.py::test_arch_matches"
    run = run_suites(tmp_path, *_plugin_args(sshd, sshd.host_key, str(sshd.client_key)),
                     f"--arch={declared}", select=select, timeout=120)
    expected = "passed" if declared == own else "failed"
    assert run.checks.get("metadata.arch_matches") == expected, run.explain()


def _status(**init: object) -> str:
    """/run/cloud-init/status.json as cloud-init 24 writes it after a NoCloud boot."""
    import json

    stage = {"errors": [], "finished": 1.0, "start": 0.5, **init}
    return json.dumps({"v1": {"datasource": "DataSourceNoCloud [seed=/dev/sr0][dsmode=net]",
                              **{s: stage for s in ("init-local", "init", "modules-config",
                                                    "modules-final")}}})


def _instance_data(**v1: str) -> str:
    import json

    return json.dumps({"v1": {"cloud_name": "aws", "platform": "ec2", **v1}})


EC2_DATA = _instance_data(region="eu-west-1", availability_zone="eu-west-1a", instance_type="t3.micro")
#: an OpenStack guest: the flavor only in Nova's EC2-compatible metadata, as cloud-init keeps it
NOVA_DATA = json.dumps({"v1": {"cloud_name": "openstack", "platform": "openstack"},
                        "ds": {"meta_data": {"uuid": "x"}, "ec2_metadata": {"instance-type": "m1.small"}}})
#: an Azure guest: the VM size only in the IMDS document the datasource keeps
AZURE_DATA = json.dumps({"v1": {"cloud_name": "azure", "platform": "azure"},
                         "ds": {"meta_data": {"imds": {"compute": {"vmSize": "Standard_B2s"}}}}})
VM_ID = "6f2d3a6e-8b1c-4d5e-9f00-1a2b3c4d5e6f"
#: the same id as the kernel shows an SMBIOS UUID in the other byte order (its first three fields)
VM_ID_SWAPPED = str(uuid.UUID(bytes=uuid.UUID(VM_ID).bytes_le))


def _iid(instance_id: str) -> str:
    return json.dumps({"v1": {"instance_id": instance_id, "cloud_name": "azure"}})


#: check, planted /run files, options, expected outcome: each check passes on a host whose boot left
#: state that agrees with the platform, and fails on one whose state says otherwise.
PLANTED = [
    ("cloud_init.datasource_expected", {"cloud-init/status.json": _status()},
     ("--datasource=NoCloud",), "passed"),
    ("cloud_init.datasource_expected", {"cloud-init/status.json": _status()},
     ("--datasource=Ec2",), "failed"),  # e.g. a datasource_list baked for another cloud
    ("cloud_init.no_recoverable_errors",
     {"cloud-init/status.json": _status(recoverable_errors={})}, (), "passed"),
    ("cloud_init.no_recoverable_errors",
     {"cloud-init/status.json": _status(recoverable_errors={
         "WARNING": ["Failed to set locale C.UTF-8"]})}, (), "failed"),
    ("metadata.region_and_zone_match", {"cloud-init/instance-data.json": EC2_DATA},
     ("--region=eu-west-1", "--zone=eu-west-1a"), "passed"),
    ("metadata.region_and_zone_match", {"cloud-init/instance-data.json": EC2_DATA},
     ("--region=eu-west-1", "--zone=eu-west-1b"), "failed"),
    ("metadata.instance_type_matches", {"cloud-init/instance-data.json": EC2_DATA},
     ("--instance-type=t3.micro",), "passed"),
    ("metadata.instance_type_matches", {"cloud-init/instance-data.json": EC2_DATA},
     ("--instance-type=t3.small",), "failed"),
    ("metadata.instance_type_matches", {"cloud-init/instance-data.json": NOVA_DATA},
     ("--instance-type=m1.small",), "passed"),
    ("metadata.instance_type_matches", {"cloud-init/instance-data.json": NOVA_DATA},
     ("--instance-type=m1.large",), "failed"),
    ("metadata.instance_type_matches", {"cloud-init/instance-data.json": AZURE_DATA},
     ("--instance-type=Standard_B2s",), "passed"),
    ("metadata.instance_type_matches", {"cloud-init/instance-data.json": AZURE_DATA},
     ("--instance-type=Standard_B1s",), "failed"),
    ("metadata.instance_id_matches", {"cloud-init/instance-data.json": _iid(VM_ID)},
     (f"--instance-id={VM_ID.upper()}",), "passed"),
    ("metadata.instance_id_matches", {"cloud-init/instance-data.json": _iid(VM_ID_SWAPPED)},
     (f"--instance-id={VM_ID}",), "passed"),
    ("metadata.instance_id_matches", {"cloud-init/instance-data.json": _iid(str(uuid.uuid4()))},
     (f"--instance-id={VM_ID}",), "failed"),
    ("metadata.instance_id_matches", {"cloud-init/instance-data.json": _iid("i-0123456789abcdef0")},
     ("--instance-id=i-0123456789abcdef1",), "failed"),
]


@pytest.mark.parametrize(("check", "run_files", "options", "expected"), PLANTED,
                         ids=[f"{c}-{e}" for c, _, _, e in PLANTED])
def test_check_compares_the_guest_state_with_the_platform(
        tmp_path: Path, check: str, run_files: dict[str, str], options: tuple[str, ...],
        expected: str) -> None:
    """Negative controls on a real host: sshd runs with a private /run holding the state a
    cloud-init boot leaves there, and the platform is declared through the options."""
    why = unavailable()
    if why:
        pytest.skip(why)
    suite, name = check.split(".")
    with running_sshd(tmp_path / "sshd", run_files=run_files) as server:
        select = f"{suites_dir()}/{suite}/test_{suite}.py::test_{name}"
        run = run_suites(tmp_path, *_plugin_args(server, server.host_key, str(server.client_key)),
                         *options, select=select, timeout=120)
    assert run.checks.get(check) == expected, run.explain()
    # failed on the comparison, not because the state could not be read
    assert "cannot" not in run.messages.get(check, ""), run.explain()


@pytest.mark.parametrize("check", ["bvt.booted_in_uefi_mode", "bvt.esp_mounted"])
def test_uefi_checks_fail_on_a_host_without_efi(tmp_path: Path, check: str) -> None:
    """Negative controls of the UEFI checks on a real host declared as started by UEFI
    firmware: its EFI runtime (/sys/firmware) and its ESP (/boot/efi) are planted away."""
    why = unavailable()
    if why:
        pytest.skip(why)
    suite, name = check.split(".")
    with running_sshd(tmp_path / "sshd", hide=("/sys/firmware", "/boot/efi")) as server:
        select = f"{suites_dir()}/{suite}/test_firmware.py::test_{name}"
        run = run_suites(tmp_path, *_plugin_args(server, server.host_key, str(server.client_key)),
                         "--firmware=uefi", select=select, timeout=120)
        (tmp_path / "bios").mkdir()
        bios = run_suites(tmp_path / "bios", *_plugin_args(server, server.host_key,
                                                           str(server.client_key)),
                          "--firmware=bios", select=select, timeout=120)
    assert run.checks.get(check) == "failed", run.explain()
    assert "/sys/firmware/efi" in run.messages[check] or "/boot/efi" in run.messages[check]
    # a BIOS platform does not ask for either
    assert bios.checks.get(check) == "skipped", bios.explain()
    assert bios.messages[check].startswith("not applicable: firmware bios"), bios.messages


#: what a host in a bad state lacks, and checks that must fail on it (not pass, not error)
BAD_STATE_HIDDEN = ("/var/lib/dpkg", "/etc/ssh", "/var/log")
BAD_STATE_FAILS = {
    # dpkg's database unreadable
    "config.dpkg_audit_clean", "config.package_installed[ca-certificates]",
    "config.unattended_upgrades_enabled", "config.no_held_packages",
    # sshd's configuration gone: `sshd -T` answers nothing
    "config.sshd_setting[passwordauthentication]", "config.sshd_setting[permitrootlogin]",
    # cloud-init never ran here: no state in /run, no log
    "cloud_init.status_done_without_errors", "cloud_init.log_free_of_warnings",
    "cloud_init.instance_data_present",
}


def test_bad_guest_states_fail_their_checks_clearly(tmp_path: Path) -> None:
    """A host in a bad state (dpkg's database, sshd's configuration and the logs unreadable;
    cloud-init never ran) fails the checks that read those, each with a one-line reason: no check
    errors, none passes on what it could not read, and no traceback reaches the report.  The
    host runs in a network namespace of its own, so what the checks send reaches nothing."""
    why = unavailable()
    if why:
        pytest.skip(why)
    with running_sshd(tmp_path / "sshd", hide=BAD_STATE_HIDDEN, own_network=True) as server:
        assert server.netns is not None
        run = run_suites(tmp_path, *_plugin_args(server, server.host_key, str(server.client_key)),
                         *(f"--ignore={suites_dir() / s}" for s in ("reboot", "uniqueness")),
                         prefix=["nsenter", f"--net={server.netns}"], timeout=600)
    assert run.rc == 1, run.explain()
    assert run.checks, run.explain()
    errors = {c for c, s in run.checks.items() if s == "error"}
    assert not errors, f"checks in error: {sorted(errors)}\n{run.explain()}"
    not_failed = {c: run.checks.get(c) for c in BAD_STATE_FAILS if run.checks.get(c) != "failed"}
    assert not not_failed, f"{not_failed}\n{run.messages}"
    tracebacks = {c: m for c, m in run.messages.items() if "Traceback" in m or "Error: " in m[:1]}
    assert not tracebacks, tracebacks


def test_bad_datasource_name_is_a_usage_error(sshd: Sshd) -> None:
    with pytest.raises(UsageError, match="--datasource"):
        SshProvider().validate(spec_for(sshd, datasource="ec2; rm"))


def test_plugin_wrong_host_key_exits_34(sshd: Sshd, tmp_path: Path) -> None:
    select = f"{suites_dir()}/metadata/test_metadata.py::test_arch_matches"
    run = run_suites(tmp_path, *_plugin_args(sshd, wrong_host_key(), str(sshd.client_key)),
                     select=select, timeout=120)
    assert run.rc == HostKeyMismatchError.exit_code == 34, run.explain()
    assert "Traceback" not in run.stdout + run.stderr
    assert "host key mismatch" in run.stdout + run.stderr


def test_plugin_missing_key_file_is_one_line(sshd: Sshd, tmp_path: Path) -> None:
    run = run_suites(tmp_path, *_plugin_args(sshd, sshd.host_key, str(tmp_path / "missing")),
                     timeout=120)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.rc == UsageError.exit_code, run.explain()
    assert lines == [f"debian-cloud-tests: error: --ssh-key {tmp_path / 'missing'}: no such file"]


def test_a_check_of_ones_own_beside_the_suites_reads_the_same_machine(sshd: Sshd, tmp_path: Path) -> None:
    """A user's own test file given with the suites uses the run's one machine: the fixtures
    exist once (a second definition would launch, and count, a second machine)."""
    own = tmp_path / "own" / "test_own.py"
    own.parent.mkdir()
    own.write_text("def test_own(host, instance):\n"
                   "    assert host.run('true').rc == 0 and instance.host is host\n")
    select = f"{suites_dir()}/metadata/test_metadata.py::test_arch_matches"
    run = run_suites(tmp_path, *_plugin_args(sshd, sshd.host_key, str(sshd.client_key)), str(own),
                     select=select, timeout=120)
    assert [s for c, s in run.checks.items() if c.endswith("test_own")] == ["passed"], run.explain()
    assert run.checks.get("metadata.arch_matches") in ("passed", "failed"), run.explain()
    root = ET.parse(tmp_path / "results.xml").getroot()
    launched = [p.get("value") for p in root.iter("property") if p.get("name") == "boot_seconds"]
    assert len(launched) == 1, launched

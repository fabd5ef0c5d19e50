"""The openstack provider through the real openstacksdk (a clouds.yaml in tmp_path, Keystone
token, catalog, version discovery) against a fake cloud on 127.0.0.1: what launch creates,
console, reboots, destroy leaving nothing, garbage collection, and the cloud's failures."""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from debian_cloud_tests.providers.openstack import OpenStackProvider, instance, retry
from debian_cloud_tests.providers.openstack.errors import (
    CredentialsError,
    QuotaError,
    ThrottledError,
)
from debian_cloud_tests.providers.openstack.gc import collect_garbage, collect_run
from debian_cloud_tests.providers.openstack.provider import OpenStackSettings
from debian_cloud_tests.providers.openstack.resources import EXPIRES_KEY, RUN_ID_KEY

from debian_cloud_tests import backoff, console, rundir
from debian_cloud_tests.errors import ArchFirmwareError, ImageNotFoundError, ProviderError, UsageError
from debian_cloud_tests.expiry import parse as parse_expiry
from debian_cloud_tests.provider import get_provider
from debian_cloud_tests.spec import Arch, Firmware, LaunchSpec, Shape

from .conftest import OptionsOnly, run_suites, stopped_mid_launch
from .fakes.openstack_cloud import (
    HOST_KEY,
    PASSWORD,
    REGION,
    ZONE,
    FakeOpenStack,
    HttpFault,
    running_openstack,
)

RUN_ID = "20260101120000-abc123"
IMAGE = "debian-12-genericcloud-amd64"


@pytest.fixture
def ostack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeOpenStack]:
    monkeypatch.setenv("DCT_SOURCE_ADDRESS", "127.0.0.1")
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(0.01)

    monkeypatch.setattr(retry, "sleep", sleep)
    monkeypatch.setattr(instance, "POLL_INTERVAL", 0.0)
    with running_openstack() as fake:
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(fake.clouds_yaml(tmp_path / "clouds.yaml")))
        monkeypatch.setenv("OS_CLOUD", "fake")
        fake.sleeps = sleeps  # type: ignore[attr-defined]
        yield fake


def make_spec(image: str = IMAGE, **options: str) -> LaunchSpec:
    return LaunchSpec(image=image, arch=Arch.AMD64, run_id=RUN_ID, boot_timeout=60, options=options)


def launch(tmp_path: Path, spec: LaunchSpec | None = None):  # type: ignore[no-untyped-def]
    p = OpenStackProvider()
    spec = p.validate(spec or make_spec())
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    return p.launch(spec, run_dir)


def test_plugin_and_provider_import_without_the_sdk() -> None:
    code = ("import sys, debian_cloud_tests.plugin, debian_cloud_tests.providers.openstack, "
            "debian_cloud_tests.providers.openstack.gc; "
            "sys.exit(1 if [m for m in sys.modules if m.startswith(('openstack', 'keystoneauth1'))] "
            "else 0)")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_registry_finds_openstack() -> None:
    assert isinstance(get_provider("openstack"), OpenStackProvider)


def test_validate_fills_in_what_the_cloud_says(ostack: FakeOpenStack) -> None:
    spec = OpenStackProvider().validate(make_spec())
    assert (spec.arch, spec.firmware, spec.instance_type) == (Arch.AMD64, Firmware.BIOS, "m1.small")
    settings = spec.settings_as(OpenStackSettings)
    assert settings.shape == Shape(vcpus=1, memory_mib=2048)
    assert settings.network_name == "public" and settings.region_name == REGION
    assert settings.cloud_name == "fake"
    arm = OpenStackProvider().validate(make_spec("debian-12-genericcloud-arm64"))
    assert (arm.arch, arm.firmware) == (Arch.ARM64, Firmware.UEFI)
    by_id = OpenStackProvider().validate(replace(make_spec(settings.image_id), instance_type="m1.medium"))
    assert by_id.settings_as(OpenStackSettings).image_name == IMAGE and by_id.instance_type == "m1.medium"
    assert ostack.leftovers() == {}


@pytest.mark.parametrize(("spec", "error", "match"), [
    (make_spec("debian-99"), ImageNotFoundError, "no such Glance image"),
    (replace(make_spec(), instance_type="m9.huge"), UsageError, "--instance-type m9.huge: no such flavor"),
    (replace(make_spec(), instance_type="m1.tiny"), UsageError, "the image needs"),
    (replace(make_spec(), disk_size="20G"), UsageError, "--disk-size 20G"),
    (replace(make_spec(), firmware=Firmware.UEFI), ArchFirmwareError, "boots with bios"),
    (make_spec(network="nowhere"), UsageError, "--network nowhere: no such network"),
    (make_spec(security_group="nosuch"), UsageError, "--security-group nosuch"),
])
def test_bad_input_is_refused_before_anything_exists(ostack: FakeOpenStack, spec: LaunchSpec,
                                                     error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        OpenStackProvider().validate(spec)
    assert ostack.leftovers() == {}


def test_several_networks_need_a_choice(ostack: FakeOpenStack) -> None:
    ostack.add_network("ext-net", external=True)  # an external network is not a candidate
    assert OpenStackProvider().validate(make_spec()).settings_as(OpenStackSettings).network_name == "public"
    ostack.add_network("private")
    with pytest.raises(UsageError, match=r"several networks \(private, public\); choose one with --network"):
        OpenStackProvider().validate(make_spec())
    assert (OpenStackProvider().validate(make_spec(network="private"))
            .settings_as(OpenStackSettings).network_name == "private")
    assert ostack.leftovers() == {}


def test_launch_console_reboots_destroy_leaves_nothing(ostack: FakeOpenStack, tmp_path: Path) -> None:
    before = datetime.now(UTC)
    ostack.empty_console_reads = 1
    machine = launch(tmp_path)
    (server,) = ostack.servers.values()
    (keypair,) = ostack.keypairs.values()
    (group,) = [g for g in ostack.security_groups.values() if g["name"] != "default"]
    pub = Path(str(machine.ssh.key_file) + ".pub").read_text().strip()
    assert keypair["public_key"] == pub and server["key_name"] == keypair["name"] == server["name"]
    (rule,) = [r for r in group["security_group_rules"] if r["direction"] == "ingress"]
    assert (rule["protocol"], rule["port_range_min"], rule["port_range_max"]) == ("tcp", 22, 22)
    assert (rule["remote_ip_prefix"], rule["ethertype"]) == ("127.0.0.1/32", "IPv4")
    assert server["security_groups"] == [{"name": group["id"]}]
    user_data = base64.b64decode(server["user_data"]).decode()
    assert user_data.startswith("## template: jinja\n#cloud-config") and pub.split()[1] in user_data
    assert server["metadata"][RUN_ID_KEY] == RUN_ID
    expires = parse_expiry(server["metadata"][EXPIRES_KEY])
    assert expires and before + timedelta(hours=2) < expires < before + timedelta(hours=4)
    assert f"{RUN_ID_KEY}={RUN_ID}" in group["description"]

    facts = machine.facts
    assert (facts.provider, facts.instance_id, facts.hostname) == ("openstack", server["id"], server["name"])
    # the zone is in Nova's metadata, the region is not: the guest cannot be asked for it
    assert (facts.datasource, facts.instance_type, facts.region, facts.zone) == (
        "OpenStack", "m1.small", None, ZONE)
    assert machine.properties()["openstack_region"] == REGION
    assert facts.disk_size == 20 * 1024**3 and facts.arch is Arch.AMD64
    assert machine.ssh.host == server["addresses"]["public"][0]["addr"] and machine.ssh.port == 22
    assert machine.is_alive()

    assert machine.console_log() == ""  # empty at first, as on a booting server
    assert console.announced_host_keys(machine.console_log()) == [HOST_KEY]
    machine.hard_reset()
    machine.soft_reboot()
    assert ostack.reboots == [(server["name"], "HARD"), (server["name"], "SOFT")]
    assert machine.destroy() == [] and ostack.leftovers() == {}
    order = [c for c in ostack.calls if c.endswith(".delete")]
    assert order == ["servers.delete", "security_groups.delete", "keypairs.delete"]
    assert machine.destroy() == [] and not machine.is_alive()


def test_a_forced_config_drive_is_the_datasource(ostack: FakeOpenStack, tmp_path: Path) -> None:
    ostack.config_drive = True
    machine = launch(tmp_path)
    assert machine.facts.datasource == "ConfigDrive"
    assert machine.destroy() == [] and ostack.leftovers() == {}


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_throttling_is_retried_as_long_as_retry_after_asks(ostack: FakeOpenStack, tmp_path: Path,
                                                           form: str) -> None:
    # RFC 9110 allows both forms; a date is read as the seconds until then (one is lost to rounding)
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=9), usegmt=True)
    ostack.fail("servers.create", 429, "Rate limit exceeded", times=2,
                retry_after="7" if form == "seconds" else later)
    ostack.fail("security_groups.create", 503, "Service Unavailable")
    machine = launch(tmp_path)
    assert ostack.calls.count("servers.create") == 3 and ostack.calls.count("security_groups.create") == 2
    assert sum(1 for s in ostack.sleeps if s >= 7) == 2  # type: ignore[attr-defined]
    assert machine.destroy() == [] and ostack.leftovers() == {}


def test_throttling_gives_up_after_the_last_attempt(ostack: FakeOpenStack, tmp_path: Path) -> None:
    ostack.fail("servers.create", 429, "Rate limit exceeded", times=backoff.API.attempts, retry_after="1")
    with pytest.raises(ThrottledError, match="openstack: create server: still rate limited"):
        launch(tmp_path)
    assert ostack.calls.count("servers.create") == backoff.API.attempts
    assert ostack.leftovers() == {}


@pytest.mark.parametrize(("action", "status", "kind", "message"), [
    ("servers.create", 403, "", "Quota exceeded for cores: Requested 1, but already used 20 of 20 cores"),
    ("servers.create", 413, "", "Quota exceeded for instances: Requested 1, but already used 10 of 10"),
    ("security_groups.create", 409, "OverQuota", "Quota exceeded for resources: ['security_group']."),
    # the group exists, its rule cannot be added: the group is found by name and removed
    ("security_group_rules.create", 409, "OverQuota",
     "Quota exceeded for resources: ['security_group_rule']."),
    ("keypairs.create", 403, "", "Quota exceeded, too many key pairs."),
])
def test_quota_fails_at_once_and_leaves_nothing(ostack: FakeOpenStack, tmp_path: Path, action: str,
                                                status: int, kind: str, message: str) -> None:
    ostack.fail(action, status, message, kind=kind)
    with pytest.raises(QuotaError, match="a project quota is reached") as caught:
        launch(tmp_path)
    assert ostack.calls.count(action) == 1 and ostack.leftovers() == {}
    assert "\n" not in caught.value.message


@pytest.mark.parametrize("action", ["security_groups.create", "servers.create", "keypairs.create"])
def test_a_create_whose_reply_was_lost_leaves_nothing(ostack: FakeOpenStack, tmp_path: Path,
                                                      action: str) -> None:
    """The cloud did it, the answer never came, the retry made a second one (or found the name
    taken): everything the run made is removed, the unrecorded one too."""
    ostack.lost_replies[action] = 1
    try:
        machine = launch(tmp_path)
    except ProviderError:
        assert action == "keypairs.create"  # the retry meets its own key pair: 409
    else:
        assert ostack.calls.count(action) == 2
        assert machine.destroy() == []
    assert ostack.leftovers() == {}


def test_server_stuck_in_build_times_out_and_leaves_nothing(ostack: FakeOpenStack, tmp_path: Path) -> None:
    ostack.stuck = True
    with pytest.raises(ProviderError, match=r"still BUILD after 1s \(waiting for ACTIVE\)"):
        launch(tmp_path, replace(make_spec(), boot_timeout=1))
    assert ostack.leftovers() == {}


def test_a_launch_waiting_in_a_thread_stops_with_the_run_and_leaves_nothing(
        ostack: FakeOpenStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ostack.stuck = True
    spec = replace(make_spec(), boot_timeout=600)
    outcome = stopped_mid_launch(monkeypatch, lambda: launch(tmp_path, spec),
                                 lambda: "servers.get" in ostack.calls)
    assert isinstance(outcome, KeyboardInterrupt), outcome
    assert ostack.leftovers() == {}


def test_a_server_in_error_says_why_and_leaves_nothing(ostack: FakeOpenStack, tmp_path: Path) -> None:
    ostack.stuck = True
    p = OpenStackProvider()
    spec = p.validate(make_spec())
    original = ostack._servers_get

    def broken(q, b, id):  # type: ignore[no-untyped-def]
        ostack.servers[id].update(status="ERROR", fault={"code": 500, "message": "No valid host was found."})
        return original(q, b, id)

    ostack._servers_get = broken  # type: ignore[method-assign]
    (tmp_path / "run").mkdir()
    with pytest.raises(ProviderError, match="is ERROR: No valid host was found"):
        p.launch(spec, tmp_path / "run")
    assert ostack.leftovers() == {}


def test_a_delete_that_fails_once_is_retried(ostack: FakeOpenStack, tmp_path: Path) -> None:
    machine = launch(tmp_path)
    ostack.fail("servers.delete", 500, "Unexpected API Error.")
    ostack.fail("security_groups.delete", 409, "Security Group in use.", kind="SecurityGroupInUse")
    assert machine.destroy() == [] and ostack.leftovers() == {}
    assert ostack.calls.count("servers.delete") == 2 and ostack.calls.count("security_groups.delete") == 2


def test_a_delete_that_keeps_failing_is_reported_and_kept(ostack: FakeOpenStack, tmp_path: Path) -> None:
    machine = launch(tmp_path)
    ostack.fail("keypairs.delete", 409, "Conflict", times=3)
    errors = machine.destroy()
    assert len(errors) == 1 and "delete key pair" in str(errors[0])
    assert ostack.leftovers() == {"keypairs": [machine.created.keypair]}
    assert machine.destroy() == [] and ostack.leftovers() == {}  # a second try removes the rest


def test_gc_deletes_expired_only(ostack: FakeOpenStack, tmp_path: Path) -> None:
    machine = launch(tmp_path)
    ostack.keypairs["mine"] = {"name": "mine", "public_key": "ssh-ed25519 AAAA", "type": "ssh"}
    assert collect_garbage(datetime.now(UTC)) == []
    assert len(ostack.servers) == 1
    deleted = collect_garbage(datetime.now(UTC) + timedelta(hours=4))
    name = machine.created.keypair
    assert deleted == [f"server {name}", f"security group {name}", f"key pair {name}"]
    assert ostack.leftovers() == {"keypairs": ["mine"]}


def test_gc_command_line(ostack: FakeOpenStack, tmp_path: Path) -> None:
    from debian_cloud_tests.providers.openstack import gc

    launch(tmp_path)
    assert gc.main(["--os-cloud", "fake"]) == 0  # nothing has expired yet
    assert len(ostack.servers) == 1


def test_refused_credentials_are_one_line_without_the_secret(tmp_path: Path) -> None:
    with running_openstack() as fake:
        config = fake.clouds_yaml(tmp_path / "clouds.yaml")
        config.write_text(config.read_text().replace(PASSWORD, "wrong-password"))
        env = {"OS_CLIENT_CONFIG_FILE": str(config), "OS_CLOUD": "fake", "DCT_SOURCE_ADDRESS": "127.0.0.1"}
        run = run_suites(tmp_path, "--provider=openstack", f"--image={IMAGE}", env=env, timeout=120)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.rc == CredentialsError.exit_code, run.explain()
    assert len(lines) == 1 and lines[0].startswith("debian-cloud-tests: error: openstack: the "
                                                   "credentials were refused"), run.explain()
    assert "wrong-password" not in run.stdout + run.stderr and "Traceback" not in run.stdout + run.stderr
    assert fake.leftovers() == {}


def test_cli_gc_removes_what_a_killed_run_left(ostack: FakeOpenStack, tmp_path: Path) -> None:
    """What a run killed hours ago left: `debian-cloud-tests gc --provider openstack` removes it,
    and leaves alone what is not ours or not expired."""
    import os

    machine = launch(tmp_path)  # a live run: not expired
    old = "dct-20200101t000000z-0badc0de"
    ostack.keypairs[old] = {"name": old, "public_key": "ssh-ed25519 AAAA", "type": "ssh"}
    marks = f"{RUN_ID_KEY}=old {EXPIRES_KEY}=2020-01-01T00:00:00Z"
    _, body, _ = ostack._security_groups_create({}, {"security_group": {"name": old, "description": marks}})
    group = body["security_group"]
    image = next(iter(ostack.images))
    ostack.servers["0ld"] = {"id": "0ld", "name": old, "status": "ACTIVE", "addresses": {},
                             "metadata": {RUN_ID_KEY: "old", EXPIRES_KEY: "2020-01-01T00:00:00Z"},
                             "image": {"id": image}, "flavor": {}, "security_groups": [{"name": old}]}
    ostack.keypairs["mine"] = {"name": "mine", "public_key": "ssh-ed25519 AAAA", "type": "ssh"}
    out = subprocess.run([sys.executable, "-m", "debian_cloud_tests.cli", "gc", "--provider", "openstack"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env={**os.environ, "TMPDIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [f"openstack: deleted server {old}",
                                       f"openstack: deleted security group {old}",
                                       f"openstack: deleted key pair {old}"]
    assert group["id"] not in ostack.security_groups
    assert sorted(ostack.keypairs) == sorted(["mine", machine.created.keypair])
    assert machine.destroy() == [] and ostack.leftovers() == {"keypairs": ["mine"]}


def test_flavor_is_openstacks_name_for_the_instance_type(ostack: FakeOpenStack) -> None:
    from debian_cloud_tests import options

    spec = options.build_spec(OptionsOnly(provider="openstack", image=IMAGE, flavor="m1.medium"),  # type: ignore[arg-type]
                              RUN_ID)
    assert spec.instance_type == "m1.medium"
    assert OpenStackProvider().validate(spec).instance_type == "m1.medium"
    with pytest.raises(UsageError, match=r"^--flavor is openstack's name for the instance type; "
                       r"with --provider=gce give --instance-type$"):
        options.build_spec(OptionsOnly(provider="gce", image=IMAGE, flavor="m1.medium"), RUN_ID)  # type: ignore[arg-type]
    assert ostack.leftovers() == {}


@pytest.mark.parametrize(("args", "says"), [
    (("--flavor=m9.huge",), "--instance-type m9.huge: no such flavor"),
    (("--flavor=m1.small", "--instance-type=m1.medium"),
     "conflicting instance types: --instance-type m1.medium, --flavor m1.small; give one"),
])
def test_flavor_through_the_plugin(ostack: FakeOpenStack, tmp_path: Path, args: tuple[str, ...],
                                   says: str) -> None:
    run = run_suites(tmp_path, "--provider=openstack", f"--image={IMAGE}", *args, timeout=120)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.rc == UsageError.exit_code, run.explain()
    assert len(lines) == 1 and lines[0].startswith(f"debian-cloud-tests: error: {says}"), run.explain()
    assert ostack.leftovers() == {}


OTHER_RUN = "20260101120000-def456"


def test_a_killed_runs_guard_removes_that_run_and_nothing_else(ostack: FakeOpenStack,
                                                               tmp_path: Path) -> None:
    """SIGKILL leaves the run dir to its guard: reaping it removes that run's server, security
    group and key pair at once; another run's and others' stay."""
    killed = launch(tmp_path)
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    p = OpenStackProvider()
    other = p.launch(p.validate(replace(make_spec(), run_id=OTHER_RUN)), other_dir)
    ostack.keypairs["mine"] = {"name": "mine", "public_key": "ssh-ed25519 AAAA", "type": "ssh"}

    assert rundir.reap(tmp_path / "run")

    assert not (tmp_path / "run").exists()
    name = other.created.keypair
    assert ostack.leftovers() == {"servers": [name], "keypairs": sorted([name, "mine"]),
                                  "security_groups": [name]}
    assert killed.created.keypair not in ostack.keypairs
    assert collect_run(RUN_ID, "fake") == [], "a second collect finds nothing"
    assert other.destroy() == [] and ostack.leftovers() == {"keypairs": ["mine"]}


def test_the_record_is_written_before_the_first_create(ostack: FakeOpenStack, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    run_dir = tmp_path / "run"
    seen: list[tuple[str, dict[str, str] | None]] = []
    handle = ostack.handle

    def watch(method: str, path: str, *args: Any) -> Any:
        if method == "POST" and not path.startswith("/v3/"):  # Keystone: a token, not a create
            record = run_dir / rundir.CLOUD_FILE
            seen.append((path, json.loads(record.read_text()) if record.exists() else None))
        return handle(method, path, *args)

    monkeypatch.setattr(ostack, "handle", watch)
    machine = launch(tmp_path)
    name = machine.created.keypair
    assert machine.destroy() == []
    assert seen and "keypairs" in seen[0][0], seen
    expected = {"provider": "openstack", "cloud": "fake", "region": REGION, "name": name,
                "run_id": RUN_ID}
    assert [record for _, record in seen] == [expected] * len(seen)


def test_a_run_killed_after_its_key_pair_loses_that_too(ostack: FakeOpenStack, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The key pair carries no run id: the name recorded before it was created finds it."""
    monkeypatch.setattr(instance.Created, "remove", lambda self, conn: [])  # killed: no undo
    ostack.fail("security_groups.create", 403)
    with pytest.raises(CredentialsError):
        launch(tmp_path)
    assert list(ostack.keypairs), "the key pair was left as a killed run leaves it"
    assert rundir.reap(tmp_path / "run")
    assert ostack.leftovers() == {}


@pytest.mark.parametrize(("run_id", "name"), [
    ("*", None), ("", None), ("20260101120000-*", None), ("20260101120000-abc12?", None),
    ("20260101120000-abc123\n", None), (RUN_ID, "mine"), (RUN_ID, "dct-*")])
def test_a_bad_run_id_is_refused_without_a_request(ostack: FakeOpenStack, run_id: str,
                                                   name: str | None) -> None:
    with pytest.raises(UsageError, match=r"is not (one|a name) this tool"):
        collect_run(run_id, "fake", REGION, name)
    assert ostack.calls == []


def _two(tmp_path: Path, **options: str):  # type: ignore[no-untyped-def]
    """Two servers of one run (one validated spec), as the network_perf suite launches them."""
    p = OpenStackProvider()
    spec = p.validate(make_spec(**options))
    machines = []
    for name in ("run", "run2"):
        (tmp_path / name).mkdir()
        machines.append(p.launch(spec, tmp_path / name))
    return machines


def _fixed(ostack: FakeOpenStack, machine: Any) -> str:
    (address,) = ostack.servers[machine.server_id]["addresses"]["public"]
    return str(address["addr"])


def test_a_link_opens_the_port_between_fixed_addresses_and_close_deletes(
        ostack: FakeOpenStack, tmp_path: Path) -> None:
    """Each server's group admits the port from the other's fixed address alone; the check
    reaches the other at its fixed address; close leaves the groups as they were."""
    a, b = _two(tmp_path)
    ssh_rules = {m: ostack.ingress(m.group_id) for m in (a, b)}
    link = a.link_to(b, 5201)
    assert [end.address for end in link.ends] == [_fixed(ostack, a), _fixed(ostack, b)]
    assert all(end.mac is None for end in link.ends)  # no interface of the link's own to set up
    assert ostack.ingress(a.group_id) == sorted([*ssh_rules[a], ("tcp", 5201, f"{_fixed(ostack, b)}/32")],
                                                key=str)
    assert ostack.ingress(b.group_id) == sorted([*ssh_rules[b], ("tcp", 5201, f"{_fixed(ostack, a)}/32")],
                                                key=str)
    assert "security group rule delete" in a.describe_access()
    assert link.close() == [] and link.close() == []
    assert {m: ostack.ingress(m.group_id) for m in (a, b)} == ssh_rules
    assert ostack.calls.count("security_group_rules.delete") == 2
    assert a.destroy() == [] and b.destroy() == [] and ostack.leftovers() == {}


def test_a_link_left_open_on_the_users_group_is_deleted_by_destroy(
        ostack: FakeOpenStack, tmp_path: Path) -> None:
    """A run that ends before the check closes its link leaves the user's group as it was, a
    rule the user had already (Neutron's 409) included."""
    _, answer, _ = ostack._security_groups_create({}, {"security_group": {"name": "theirs"}})
    theirs = answer["security_group"]["id"]
    a, b = _two(tmp_path, security_group="theirs")
    assert a.group_id == b.group_id == theirs
    ostack._security_group_rules_create({}, {"security_group_rule": {
        "security_group_id": theirs, "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
        "port_range_min": 5201, "port_range_max": 5201, "remote_ip_prefix": f"{_fixed(ostack, b)}/32",
        "description": "the user's"}})
    users = ostack.ingress(theirs)
    a.link_to(b, 5201)
    assert ostack.ingress(theirs) == sorted([*users, ("tcp", 5201, f"{_fixed(ostack, a)}/32")], key=str)
    assert (a.created.rules, len(b.created.rules)) == ([], 1)  # the user's rule is not a's
    assert a.destroy() == [] and b.destroy() == []
    assert ostack.ingress(theirs) == users
    assert ostack.leftovers() == {"security_groups": ["theirs"]}


def test_a_rule_whose_reply_was_lost_is_still_deleted(ostack: FakeOpenStack, tmp_path: Path) -> None:
    """The create was done but answered 503: the retry's 409 names a rule with the link's own
    description, which is the link's to delete."""
    a, b = _two(tmp_path)
    ssh_rules = {m: ostack.ingress(m.group_id) for m in (a, b)}
    ostack.lost_replies["security_group_rules.create"] = 1
    link = a.link_to(b, 5201)
    assert len(a.created.rules) == len(b.created.rules) == 1
    assert link.close() == []
    assert {m: ostack.ingress(m.group_id) for m in (a, b)} == ssh_rules
    assert a.destroy() == [] and b.destroy() == [] and ostack.leftovers() == {}


def test_a_rule_close_could_not_delete_is_deleted_by_destroy(ostack: FakeOpenStack,
                                                             tmp_path: Path) -> None:
    _, answer, _ = ostack._security_groups_create({}, {"security_group": {"name": "theirs"}})
    theirs = answer["security_group"]["id"]
    a, b = _two(tmp_path, security_group="theirs")
    link = a.link_to(b, 5201)
    ostack.fail("security_group_rules.delete", 403, "Policy doesn't allow it")
    (error,) = link.close()  # said, not raised
    assert "was not removed" in str(error) and "5201" in str(error)
    assert len(a.created.rules) + len(b.created.rules) == 1
    assert a.destroy() == [] and b.destroy() == []
    assert ostack.ingress(theirs) == []
    assert ostack.leftovers() == {"security_groups": ["theirs"]}


def test_a_refused_rule_fails_the_link_and_leaves_nothing(ostack: FakeOpenStack, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = _two(tmp_path)
    ssh_rules = {m: ostack.ingress(m.group_id) for m in (a, b)}
    calls = len(ostack.calls)
    create, made = ostack._security_group_rules_create, []

    def second_refused(q: Any, body: Any) -> Any:  # the first rule is made, the second refused
        if made:
            raise HttpFault(409, "OverQuota", "Quota exceeded for resources: ['security_group_rule']")
        made.append(body)
        return create(q, body)

    monkeypatch.setattr(ostack, "_security_group_rules_create", second_refused)
    with pytest.raises(ProviderError, match=r"could not open TCP port 5201 of security group .*quota"):
        a.link_to(b, 5201)
    assert ostack.calls[calls:].count("security_group_rules.delete") == 1
    assert {m: ostack.ingress(m.group_id) for m in (a, b)} == ssh_rules
    assert a.created.rules == b.created.rules == []
    assert a.destroy() == [] and b.destroy() == [] and ostack.leftovers() == {}


def test_servers_on_two_networks_are_not_linked(ostack: FakeOpenStack, tmp_path: Path) -> None:
    ostack.add_network("private")
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    a = launch(tmp_path / "one", make_spec(network="public"))
    b = launch(tmp_path / "two", make_spec(network="private"))
    with pytest.raises(ProviderError, match="their fixed addresses do not reach each other"):
        a.link_to(b, 5201)
    assert ostack.calls.count("security_group_rules.create") == 2  # SSH only
    assert a.destroy() == [] and b.destroy() == [] and ostack.leftovers() == {}


def test_a_killed_runs_link_rules_on_the_users_group_go_with_it(ostack: FakeOpenStack,
                                                                 tmp_path: Path) -> None:
    """Its guard (collect_run) removes the rules admitting the run's servers, and gc a rule
    whose server is gone: the user's group is left as it was."""
    _, answer, _ = ostack._security_groups_create({}, {"security_group": {"name": "theirs"}})
    theirs = answer["security_group"]["id"]
    a, b = _two(tmp_path, security_group="theirs")
    a.link_to(b, 5201)
    assert len(ostack.ingress(theirs)) == 2
    assert rundir.reap(tmp_path / "run")
    assert ostack.ingress(theirs) == []
    assert ostack.leftovers() == {"security_groups": ["theirs"]}

    (tmp_path / "again").mkdir()
    c, d = _two(tmp_path / "again", security_group="theirs")
    c.link_to(d, 5201)
    ostack._servers_delete({}, None, d.server_id)  # d vanished without its run's cleanup
    (admits_d,) = c.created.rules
    assert collect_garbage(datetime.now(UTC)) == [
        f"security group rule {admits_d.rule_id} (from server {d.server_id})"]
    assert [prefix for _, _, prefix in ostack.ingress(theirs)] == [f"{_fixed(ostack, c)}/32"]
    assert collect_garbage(datetime.now(UTC)) == []  # c's server lives: the rule admitting it stays
    assert c.destroy() == []  # the rule it added is gone already: not a failure
    assert len(collect_garbage(datetime.now(UTC))) == 1 and ostack.ingress(theirs) == []

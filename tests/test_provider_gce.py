"""The gce provider through the real google-cloud-compute client (REST, anonymous credentials)
against a fake Compute Engine on 127.0.0.1: what launch creates, console, reset, destroy leaving
nothing, garbage collection, and the cloud's failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from debian_cloud_tests.providers.gce import GceProvider, resources, retry
from debian_cloud_tests.providers.gce.errors import CredentialsError, QuotaError, ThrottledError
from debian_cloud_tests.providers.gce.gc import collect_garbage, collect_run
from debian_cloud_tests.providers.gce.provider import GceSettings
from debian_cloud_tests.providers.gce.resources import EXPIRES_LABEL, RUN_ID_LABEL

from debian_cloud_tests import backoff, console, rundir
from debian_cloud_tests.errors import DCTError, ImageNotFoundError, ProviderError, UsageError
from debian_cloud_tests.expiry import parse as parse_expiry
from debian_cloud_tests.provider import get_provider
from debian_cloud_tests.spec import Arch, Firmware, LaunchSpec, Shape

from .conftest import OptionsOnly, run_suites, stopped_mid_launch
from .fakes.gce_compute import HOST_KEY, PROJECT, ZONE, FakeGce, running_gce

RUN_ID = "20260101120000-abc123"
FAMILY = "projects/debian-cloud/global/images/family/debian-12"


@pytest.fixture
def gce(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGce]:
    monkeypatch.setenv("DCT_SOURCE_ADDRESS", "127.0.0.1")
    sleeps: list[float] = []
    monkeypatch.setattr(retry, "sleep", sleeps.append)
    with running_gce() as fake:
        fake.sleeps = sleeps  # type: ignore[attr-defined]
        yield fake


def provider(fake: FakeGce) -> GceProvider:
    from google.auth.credentials import AnonymousCredentials

    return GceProvider(project=PROJECT, credentials=AnonymousCredentials(), endpoint=fake.url)


def make_spec(image: str = FAMILY, **options: str) -> LaunchSpec:
    return LaunchSpec(image=image, arch=Arch.AMD64, run_id=RUN_ID, boot_timeout=60,
                      options={"zone": ZONE, **options})


def launch(fake: FakeGce, tmp_path: Path, spec: LaunchSpec | None = None):  # type: ignore[no-untyped-def]
    p = provider(fake)
    spec = p.validate(spec or make_spec())
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    return p.launch(spec, run_dir)


def test_plugin_and_provider_import_without_the_sdk() -> None:
    code = ("import sys, debian_cloud_tests.plugin, debian_cloud_tests.providers.gce, "
            "debian_cloud_tests.providers.gce.gc; "
            "sys.exit(1 if [m for m in sys.modules if m.startswith('google')] else 0)")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_registry_finds_gce() -> None:
    assert isinstance(get_provider("gce"), GceProvider)


def test_validate_fills_in_what_the_image_says(gce: FakeGce) -> None:
    spec = provider(gce).validate(make_spec())
    assert (spec.arch, spec.firmware, spec.instance_type) == (Arch.AMD64, Firmware.UEFI, "e2-small")
    assert spec.settings_as(GceSettings).shape == Shape(vcpus=2, memory_mib=2048)
    arm = provider(gce).validate(make_spec("projects/debian-cloud/global/images/family/debian-12-arm64"))
    assert (arm.arch, arm.instance_type) == (Arch.ARM64, "t2a-standard-1")


@pytest.mark.parametrize(("spec", "error", "match"), [
    (make_spec("ami-0123"), UsageError, "projects/PROJECT/global/images"),
    (make_spec(zone="nowhere"), UsageError, "--zone"),
    (make_spec("projects/debian-cloud/global/images/nope"), ImageNotFoundError, "no such image"),
    (make_spec("projects/debian-cloud/global/images/family/nope"), ImageNotFoundError, "no such"),
])
def test_bad_input_is_refused_before_anything_exists(gce: FakeGce, spec: LaunchSpec,
                                                     error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        provider(gce).validate(spec)
    assert gce.leftovers() == {}


def test_unknown_machine_type(gce: FakeGce) -> None:
    from dataclasses import replace

    with pytest.raises(UsageError, match="--instance-type n9-huge"):
        provider(gce).validate(replace(make_spec(), instance_type="n9-huge"))


def test_launch_console_reset_destroy_leaves_nothing(gce: FakeGce, tmp_path: Path) -> None:
    before = datetime.now(UTC)
    gce.empty_console_reads = 1
    machine = launch(gce, tmp_path)
    (inst,) = gce.instances.values()
    (rule,) = gce.firewalls.values()
    assert rule["sourceRanges"] == ["127.0.0.1/32"] and rule["targetTags"] == inst["tags"]["items"]
    assert rule["allowed"] == [{"IPProtocol": "tcp", "ports": ["22"]}]
    meta = {i["key"]: i["value"] for i in inst["metadata"]["items"]}
    pub = Path(str(machine.ssh.key_file) + ".pub").read_text().split()[1]
    assert meta["ssh-keys"].startswith("debian:ssh-ed25519 ") and pub in meta["ssh-keys"]
    assert meta["user-data"].startswith("## template: jinja\n#cloud-config") and pub in meta["user-data"]
    for marks in (inst["labels"], inst["disks"][0]["initializeParams"]["labels"]):
        assert marks[RUN_ID_LABEL] == RUN_ID
        expires = parse_expiry(marks[EXPIRES_LABEL])
        assert expires and before + timedelta(hours=2) < expires < before + timedelta(hours=4)
    assert f"dct-run-id={RUN_ID}" in rule["description"]
    assert machine.facts.instance_id == inst["id"] and machine.facts.datasource == "GCE"
    assert machine.ssh.host == inst["networkInterfaces"][0]["accessConfigs"][0]["natIP"]
    assert (machine.facts.zone, machine.facts.region) == (ZONE, "europe-west1")

    assert machine.console_log() == ""  # empty at first, as on a booting instance
    machine._read_at = float("-inf")
    assert console.announced_host_keys(machine.console_log()) == [HOST_KEY]
    machine.hard_reset()
    assert gce.resets == [inst["name"]]
    assert machine.destroy() == [] and gce.leftovers() == {}
    assert machine.destroy() == []


def test_throttling_is_retried_with_backoff(gce: FakeGce, tmp_path: Path) -> None:
    gce.fail("instances.insert", 429, "rateLimitExceeded", times=2)
    gce.fail("firewalls.insert", 403, "rateLimitExceeded", times=1)
    machine = launch(gce, tmp_path)
    assert gce.calls.count("instances.insert") == 3 and gce.calls.count("firewalls.insert") == 2
    assert len(gce.sleeps) >= 3  # type: ignore[attr-defined]
    assert machine.destroy() == [] and gce.leftovers() == {}
    retried = [(r.action, r.attempt, r.cause) for r in backoff.RETRIES[-3:]]
    assert sorted(retried) == [("firewalls.insert", 1, "403 rateLimitExceeded"),
                               ("instances.insert", 1, "429 rateLimitExceeded"),
                               ("instances.insert", 2, "429 rateLimitExceeded")], backoff.RETRIES
    assert backoff.properties()["provider_retries"] == str(len(backoff.RETRIES))


def test_throttling_gives_up_after_the_last_attempt(gce: FakeGce, tmp_path: Path) -> None:
    gce.fail("instances.insert", 429, "rateLimitExceeded", times=backoff.API.attempts)
    with pytest.raises(ThrottledError, match=r"gce: instances\.insert: still rate limited"):
        launch(gce, tmp_path)
    assert gce.leftovers() == {}


@pytest.mark.parametrize("as_operation", [False, True])
def test_quota_fails_at_once_and_leaves_nothing(gce: FakeGce, tmp_path: Path, as_operation: bool) -> None:
    if as_operation:
        gce.fail_operation("instances.insert", "QUOTA_EXCEEDED", "Quota 'CPUS' exceeded")
    else:
        gce.fail("instances.insert", 403, "quotaExceeded", message="Quota 'CPUS' exceeded")
    with pytest.raises(QuotaError, match=r"gce: instances\.insert: a project quota is reached"):
        launch(gce, tmp_path)
    assert gce.calls.count("instances.insert") == 1 and gce.leftovers() == {}


def test_instance_stuck_pending_times_out_and_leaves_nothing(gce: FakeGce, tmp_path: Path) -> None:
    from dataclasses import replace

    gce.stuck = True
    with pytest.raises(ProviderError, match="still STAGING after 1s"):
        launch(gce, tmp_path, replace(make_spec(), boot_timeout=1))
    assert gce.leftovers() == {}


def test_a_launch_waiting_in_a_thread_stops_with_the_run_and_leaves_nothing(
        gce: FakeGce, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    gce.stuck = True
    spec = replace(make_spec(), boot_timeout=600)
    outcome = stopped_mid_launch(monkeypatch, lambda: launch(gce, tmp_path, spec),
                                 lambda: "instances.insert" in gce.calls)
    assert isinstance(outcome, KeyboardInterrupt), outcome
    assert gce.leftovers() == {}


def test_a_delete_that_fails_once_is_retried(gce: FakeGce, tmp_path: Path) -> None:
    machine = launch(gce, tmp_path)
    gce.fail_operation("instances.delete", "RESOURCE_NOT_READY", "the resource is not ready")
    gce.fail("firewalls.delete", 503, "backendError")
    assert machine.destroy() == [] and gce.leftovers() == {}
    assert gce.calls.count("instances.delete") == 2


def test_gc_deletes_expired_only(gce: FakeGce, tmp_path: Path) -> None:
    machine = launch(gce, tmp_path)
    from google.auth.credentials import AnonymousCredentials

    creds = AnonymousCredentials()
    assert collect_garbage(datetime.now(UTC), PROJECT, creds, gce.url) == []
    assert len(gce.instances) == 1
    deleted = collect_garbage(datetime.now(UTC) + timedelta(hours=4), PROJECT, creds, gce.url)
    assert sorted(deleted) == [machine.created.instance, machine.created.firewall]
    assert gce.leftovers() == {}


def test_missing_credentials_is_one_line(tmp_path: Path) -> None:
    env = {"GOOGLE_APPLICATION_CREDENTIALS": "", "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),
           "GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1:9",
           "NO_GCE_CHECK": "True", "GOOGLE_CLOUD_PROJECT": PROJECT}
    run = run_suites(tmp_path, "--provider=gce", f"--image={FAMILY}", f"--zone={ZONE}", env=env,
                     timeout=120)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.rc == UsageError.exit_code, run.explain()
    assert len(lines) == 1 and lines[0].startswith("debian-cloud-tests: error: gce: "), run.explain()
    assert "GOOGLE_APPLICATION_CREDENTIALS" in lines[0]


def gce_env(fake: FakeGce, tmp_path: Path) -> dict[str, str]:
    """A process's way to the fake: a service-account key whose token_uri is the fake, its API
    endpoint, and no metadata server or gcloud configuration to look at."""
    return {"GOOGLE_APPLICATION_CREDENTIALS": str(fake.service_account(tmp_path / "sa.json")),
            "DCT_GCE_API_ENDPOINT": fake.url, "GOOGLE_CLOUD_PROJECT": PROJECT,
            "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"), "NO_GCE_CHECK": "True",
            "GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1:9",
            "DCT_SOURCE_ADDRESS": "127.0.0.1"}


def test_machine_type_is_gces_name_for_the_instance_type(gce: FakeGce) -> None:
    from debian_cloud_tests import options

    config = OptionsOnly(provider="gce", image=FAMILY, zone=ZONE, machine_type="e2-medium")
    spec = options.build_spec(config, RUN_ID)  # type: ignore[arg-type]
    assert spec.instance_type == "e2-medium"
    spec = provider(gce).validate(spec)
    assert (spec.instance_type, spec.settings_as(GceSettings).shape.memory_mib) == ("e2-medium", 4096)
    same = OptionsOnly(provider="gce", image=FAMILY, zone=ZONE, machine_type="e2-medium",
                       instance_type="e2-medium")
    assert options.build_spec(same, RUN_ID).instance_type == "e2-medium"  # type: ignore[arg-type]
    elsewhere = OptionsOnly(provider="aws", image="ami-0123456789abcdef0", machine_type="t3.small")
    with pytest.raises(UsageError, match=r"^--machine-type is gce's name for the instance type; "
                       r"with --provider=aws give --instance-type$"):
        options.build_spec(elsewhere, RUN_ID)  # type: ignore[arg-type]


@pytest.mark.parametrize(("args", "says"), [
    (("--machine-type=n9-huge",), "--instance-type n9-huge: no such machine type in europe-west1-b "
     "(or no such zone)"),
    (("--machine-type=e2-small", "--instance-type=e2-medium"),
     "conflicting instance types: --instance-type e2-medium, --machine-type e2-small; give one"),
])
def test_machine_type_through_the_plugin(gce: FakeGce, tmp_path: Path, args: tuple[str, ...],
                                         says: str) -> None:
    run = run_suites(tmp_path, "--provider=gce", f"--image={FAMILY}", f"--zone={ZONE}", *args,
                     env=gce_env(gce, tmp_path), timeout=120)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.rc == UsageError.exit_code, run.explain()
    assert lines == [f"debian-cloud-tests: error: {says}"], run.explain()
    assert gce.leftovers() == {}


def test_retry_after_is_honoured_within_bounds(gce: FakeGce, tmp_path: Path) -> None:
    """A 429 with Retry-After: waiting less only earns another 429; an absurd ask is capped."""
    gce.fail("instances.insert", 429, "rateLimitExceeded", times=2, retry_after="7")
    gce.fail("firewalls.insert", 429, "rateLimitExceeded", times=1, retry_after="86400")
    machine = launch(gce, tmp_path)
    assert gce.calls.count("instances.insert") == 3 and gce.calls.count("firewalls.insert") == 2
    assert sorted(gce.sleeps)[-3:] == [7.0, 7.0, backoff.MAX_RETRY_AFTER]  # type: ignore[attr-defined]
    assert machine.destroy() == [] and gce.leftovers() == {}


@pytest.mark.parametrize(("where", "status", "error"), [
    ("token", 400, "invalid_grant"), ("token", 401, "invalid_client"), ("api", 401, "")])
def test_refused_credentials_are_one_line_without_the_secret(gce: FakeGce, tmp_path: Path, where: str,
                                                             status: int, error: str) -> None:
    """Federated credentials whose token exchange is refused (a revoked subject token, a wrong
    client secret), or a token the API refuses: one line naming what to set, the usage exit
    code, and never a secret."""
    env = gce_env(gce, tmp_path)
    secrets = ["subject-token-do-not-print", "client-secret-do-not-print"]
    if where == "token":
        env["GOOGLE_APPLICATION_CREDENTIALS"] = str(gce.external_account(tmp_path / "wif.json", *secrets))
        gce.token_refusal = (status, error)
    else:  # a service account key: the client signs its own token, which the API refuses
        key = json.loads(Path(env["GOOGLE_APPLICATION_CREDENTIALS"]).read_text())["private_key"]
        secrets = [line for line in key.splitlines() if "PRIVATE KEY" not in line and len(line) > 20]
        gce.fail("images.getFromFamily", status, "authError", times=10, message="Invalid Credentials")
    gce.require_token = True
    run = run_suites(tmp_path, "--provider=gce", f"--image={FAMILY}", f"--zone={ZONE}", env=env,
                     timeout=120)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.rc == CredentialsError.exit_code == UsageError.exit_code, run.explain()
    assert len(lines) == 1 and lines[0].startswith("debian-cloud-tests: error: gce: the credentials "
                                                   "were refused"), run.explain()
    assert "GOOGLE_APPLICATION_CREDENTIALS" in lines[0] and (error or "authError") in lines[0]
    junit = tmp_path / "results.xml"
    seen = run.stdout + run.stderr + (junit.read_text() if junit.exists() else "")
    assert "Traceback" not in seen and "PRIVATE KEY" not in seen
    assert secrets and not [s for s in secrets if s in seen]
    assert not [t for t in {*gce.tokens, *gce.bearers} if t in seen]
    assert gce.leftovers() == {} and "instances.insert" not in gce.calls


def test_cli_gc_removes_what_a_killed_run_left(gce: FakeGce, tmp_path: Path) -> None:
    """`debian-cloud-tests gc --provider gce --project P`, credentials from the environment as a
    user's: what a run killed hours ago left goes, a live run's and others' stay."""
    machine = launch(gce, tmp_path)  # a live run: not expired
    old = "dct-0badc0de0000"
    marks = {RUN_ID_LABEL: "old", EXPIRES_LABEL: "20200101t000000z"}
    gce.instances[old] = {"name": old, "id": "7", "status": "RUNNING", "labels": marks,
                          "zone": f"{gce.url}/compute/v1/projects/{PROJECT}/zones/{ZONE}"}
    gce.firewalls[old] = {"name": old, "id": "8", "description": "debian-cloud-tests: SSH; "
                          "dct-run-id=old dct-expires=20200101t000000z"}
    gce.firewalls["theirs"] = {"name": "theirs", "id": "9", "description": "allow http"}
    gce.require_token = True
    env = {**os.environ, **gce_env(gce, tmp_path), "GOOGLE_CLOUD_PROJECT": "", "TMPDIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "debian_cloud_tests.cli", "gc", "--provider", "gce",
                          "--project", PROJECT], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert sorted(out.stdout.splitlines()) == [f"gce: deleted {old}", f"gce: deleted {old}"]
    assert gce.bearers, "the API saw the service account's credentials"
    assert sorted(gce.instances) == [machine.created.instance]
    assert sorted(gce.firewalls) == sorted([machine.created.firewall, "theirs"])
    gce.require_token = False
    assert machine.destroy() == [] and gce.leftovers() == {"firewalls": ["theirs"]}


OTHER_RUN = "20260101120000-def456"


def test_a_killed_runs_guard_removes_that_run_and_nothing_else(
        gce: FakeGce, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGKILL leaves the run dir to its guard: reaping it removes that run's instance and
    firewall rule at once, with credentials from the environment as the run's; another run's
    and others' stay."""
    from dataclasses import replace

    killed = launch(gce, tmp_path)
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    p = provider(gce)
    other = p.launch(p.validate(replace(make_spec(), run_id=OTHER_RUN)), other_dir)
    gce.firewalls["theirs"] = {"name": "theirs", "id": "9", "description": "allow http"}
    for key, value in gce_env(gce, tmp_path).items():
        monkeypatch.setenv(key, value)

    assert rundir.reap(tmp_path / "run")

    assert not (tmp_path / "run").exists()
    assert sorted(gce.instances) == [other.created.instance]
    assert sorted(gce.firewalls) == sorted([other.created.firewall, "theirs"])
    assert killed.created.instance not in gce.instances
    assert collect_run(PROJECT, RUN_ID, gce.url) == [], "a second collect finds nothing"
    assert other.destroy() == [] and gce.leftovers() == {"firewalls": ["theirs"]}


def test_the_record_is_written_before_the_first_create(gce: FakeGce, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = tmp_path / "run"
    seen: list[tuple[str, dict[str, str] | None]] = []
    handle = gce.handle

    def watch(method: str, path: str, *args: object) -> object:
        if method == "POST":
            record = run_dir / rundir.CLOUD_FILE
            seen.append((path, json.loads(record.read_text()) if record.exists() else None))
        return handle(method, path, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(gce, "handle", watch)
    launch(gce, tmp_path).destroy()
    assert seen and seen[0][0].endswith("/global/firewalls"), seen
    expected = {"provider": "gce", "project": PROJECT, "endpoint": gce.url, "run_id": RUN_ID}
    assert [record for _, record in seen] == [expected] * len(seen)


@pytest.mark.parametrize("run_id", ["*", "", "20260101120000-*", "20260101120000-abc12?",
                                    "20260101120000-abc123\n", 'x" OR labels.a:*'])
def test_a_bad_run_id_is_refused_without_a_request(gce: FakeGce, run_id: str) -> None:
    from google.auth.credentials import AnonymousCredentials

    with pytest.raises(UsageError, match="is not one this tool makes"):
        collect_run(PROJECT, run_id, gce.url, AnonymousCredentials())
    assert gce.calls == [] and not gce.tokens


def test_secure_boot_launches_a_shielded_vm_with_it_on(gce: FakeGce, tmp_path: Path) -> None:
    """--secure-boot is a launch parameter on GCE: shieldedInstanceConfig.enableSecureBoot."""
    from dataclasses import replace

    machine = launch(gce, tmp_path, replace(make_spec(), secure_boot=True))
    (inst,) = gce.instances.values()
    assert inst["shieldedInstanceConfig"] == {"enableSecureBoot": True}
    assert machine.destroy() == [] and gce.leftovers() == {}
    (tmp_path / "plain").mkdir()
    plain = launch(gce, tmp_path / "plain")
    (inst,) = gce.instances.values()
    assert "shieldedInstanceConfig" not in inst
    assert plain.destroy() == []


def test_secure_boot_on_a_bios_image_is_refused_before_anything_exists(gce: FakeGce) -> None:
    from dataclasses import replace

    from debian_cloud_tests.errors import SecureBootUnavailableError

    gce.add_image("debian-12-bios-v20260101", family="debian-12-bios")
    gce.images["debian-12-bios-v20260101"]["guestOsFeatures"] = [{"type": "GVNIC"}]
    spec = replace(make_spec("projects/debian-cloud/global/images/family/debian-12-bios"),
                   secure_boot=True)
    with pytest.raises(SecureBootUnavailableError, match="lacks the UEFI_COMPATIBLE guest OS"):
        provider(gce).validate(spec)
    assert gce.leftovers() == {}


def _two(fake: FakeGce, tmp_path: Path, **options: str):  # type: ignore[no-untyped-def]
    """Two instances of the run; the second with *options* (e.g. another network)."""
    first = launch(fake, tmp_path)
    (tmp_path / "second").mkdir()
    return first, launch(fake, tmp_path / "second", make_spec(**options))


def _internal(fake: FakeGce, machine) -> str:  # type: ignore[no-untyped-def]
    return str(fake.instances[machine.name]["networkInterfaces"][0]["networkIP"])


def test_a_link_opens_the_port_between_internal_addresses_and_close_deletes_it(
        gce: FakeGce, tmp_path: Path) -> None:
    """One rule of the instances' network admits the port from their two internal addresses
    alone, to the two instances alone, marked for gc like the launch's rules; the check reaches
    the other at its internal address; close leaves the firewall as it was."""
    from .fakes.gce_qemu import opened

    a, b = _two(gce, tmp_path)
    ssh_rules = dict(gce.firewalls)
    link = a.link_to(b, 5201)
    addresses = [_internal(gce, a), _internal(gce, b)]
    assert [end.address for end in link.ends] == addresses and addresses[0] != addresses[1]
    assert all(end.mac is None for end in link.ends)  # no interface of the link's own to set up
    (name,) = set(gce.firewalls) - set(ssh_rules)
    rule = gce.firewalls[name]
    assert a.name in name and b.name.removeprefix("dct-") in name
    assert sorted(rule["sourceRanges"]) == sorted(f"{ip}/32" for ip in addresses)
    assert sorted(rule["targetTags"]) == sorted([a.name, b.name])
    assert rule["allowed"] == [{"IPProtocol": "tcp", "ports": ["5201"]}]
    assert rule["network"] == gce.instances[a.name]["networkInterfaces"][0]["network"]
    marks = resources.description_marks(rule["description"])
    assert marks[RUN_ID_LABEL] == RUN_ID and parse_expiry(marks[EXPIRES_LABEL])
    # what the emulated network forwards: the port into each, from the other, and no more
    instances = list(gce.instances.values())
    assert [opened(i, instances, gce.firewalls.values()) for i in instances] == [{5201}, {5201}]
    assert link.close() == [] and link.close() == []
    assert gce.firewalls == ssh_rules and a.created.links == []
    assert [opened(i, instances, gce.firewalls.values()) for i in instances] == [set(), set()]
    assert a.destroy() == [] and b.destroy() == [] and gce.leftovers() == {}


def test_a_link_left_open_is_deleted_by_destroy_and_swept_by_gc(gce: FakeGce, tmp_path: Path) -> None:
    """A run that ends before the check closes its link leaves no rule; a crashed one's rule
    expires as the launch's do."""
    from google.auth.credentials import AnonymousCredentials

    a, b = _two(gce, tmp_path)
    link = a.link_to(b, 5201)
    assert link.rule in gce.firewalls and link.rule in a.describe_access()
    deleted = collect_garbage(datetime.now(UTC) + timedelta(hours=4), PROJECT, AnonymousCredentials(),
                              gce.url)
    assert link.rule in deleted and gce.leftovers() == {}
    (tmp_path / "again").mkdir()
    a, b = _two(gce, tmp_path / "again")
    a.link_to(b, 5201)
    assert b.destroy() == [] and a.destroy() == [] and gce.leftovers() == {}


def test_machines_on_two_networks_are_not_linked(gce: FakeGce, tmp_path: Path) -> None:
    a, b = _two(gce, tmp_path, network="other")
    calls = len(gce.calls)
    with pytest.raises(ProviderError, match="their internal addresses do not reach each other"):
        a.link_to(b, 5201)
    assert gce.calls[calls:] == []  # refused before any request
    assert a.destroy() == [] and b.destroy() == [] and gce.leftovers() == {}


def test_a_link_the_cloud_refuses_fails_in_one_line_and_leaves_nothing(
        gce: FakeGce, tmp_path: Path) -> None:
    a, b = _two(gce, tmp_path)
    gce.fail("firewalls.insert", 403, "forbidden", message="Required 'compute.firewalls.create'")
    with pytest.raises(DCTError, match=r"firewalls\.insert is not allowed .*compute\.firewalls\.create") as e:
        a.link_to(b, 5201)
    assert "\n" not in e.value.message and a.created.links == []
    assert len(gce.firewalls) == 2
    assert a.destroy() == [] and b.destroy() == [] and gce.leftovers() == {}

"""The azure provider through the real Azure SDK clients against a fake Resource Manager on
127.0.0.1 (plain HTTP through a bearer-header policy, long-running operations polled by the SDK's
own pollers): one resource group per run, tagged, deleted as a whole, and the cloud's failures."""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from debian_cloud_tests.providers.azure import AzureProvider, errors, machine
from debian_cloud_tests.providers.azure.errors import QuotaError, ThrottledError
from debian_cloud_tests.providers.azure.gc import collect_garbage, collect_run
from debian_cloud_tests.providers.azure.provider import EXPIRES_TAG, RUN_ID_TAG

from debian_cloud_tests import backoff, console, rundir
from debian_cloud_tests.errors import ArchFirmwareError, ImageNotFoundError, ProviderError, UsageError
from debian_cloud_tests.expiry import parse as parse_expiry
from debian_cloud_tests.provider import get_provider
from debian_cloud_tests.seed import INSTANCE_ID_TEMPLATE, MARKER_PATH
from debian_cloud_tests.spec import Arch, Firmware, LaunchSpec

from .conftest import run_suites, stopped_mid_launch
from .fakes.azure_arm import HOST_KEY, LOCATION, SUBSCRIPTION, FakeArm, running_arm

RUN_ID = "20260101120000-abc123"
URN = "Debian:debian-12:12-gen2:latest"


class StubCredential:
    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken("stub-token", 4102444800)


def client_kwargs(fake: FakeArm) -> dict[str, Any]:
    from azure.core.pipeline.policies import HeadersPolicy

    # no retry settings: the clients retry as production makes them (the SDK's retries off)
    return {"base_url": fake.url, "authentication_policy": HeadersPolicy({"Authorization": "Bearer stub"}),
            "polling_interval": 0}


def provider(fake: FakeArm) -> AzureProvider:
    return AzureProvider(StubCredential(), SUBSCRIPTION, **client_kwargs(fake))


@pytest.fixture
def arm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeArm]:
    monkeypatch.setenv("DCT_SOURCE_ADDRESS", "127.0.0.1")
    monkeypatch.setattr(errors, "sleep", lambda s: None)
    monkeypatch.setattr(machine, "POLL_INTERVAL", 0.0)
    with running_arm() as fake:
        yield fake


def make_spec(image: str = URN, **kw: Any) -> LaunchSpec:
    return LaunchSpec(image=image, arch=Arch.AMD64, run_id=RUN_ID, boot_timeout=30,
                      options={"region": LOCATION}, **kw)


def launch(fake: FakeArm, tmp_path: Path, spec: LaunchSpec | None = None) -> Any:
    p = provider(fake)
    spec = p.validate(spec or make_spec())
    (tmp_path / "run").mkdir(exist_ok=True)
    return p.launch(spec, tmp_path / "run")


def test_plugin_and_provider_import_without_the_sdk() -> None:
    code = ("import sys, debian_cloud_tests.plugin, debian_cloud_tests.providers.azure; "
            "sys.exit(1 if [m for m in sys.modules if m.startswith('azure')] else 0)")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_registry_finds_azure() -> None:
    assert isinstance(get_provider("azure"), AzureProvider)


def test_validate_reads_the_marketplace_image(arm: FakeArm) -> None:
    spec = provider(arm).validate(make_spec())
    assert (spec.arch, spec.firmware, spec.instance_type) == (Arch.AMD64, Firmware.UEFI, "Standard_B2s")
    with pytest.raises(ImageNotFoundError, match="no such image"):
        provider(arm).validate(make_spec("Debian:debian-99:x:latest"))
    with pytest.raises(UsageError, match="URN"):
        provider(arm).validate(make_spec("ami-123"))
    assert arm.leftovers() == {}


def test_launch_console_restart_destroy_leaves_nothing(arm: FakeArm, tmp_path: Path) -> None:
    before = datetime.now(UTC)
    arm.empty_console_reads = 1
    m = launch(arm, tmp_path)
    (group,) = arm.groups()
    for resource in arm.resources.values():
        assert resource["tags"][RUN_ID_TAG] == RUN_ID, resource["id"]
        expires = parse_expiry(resource["tags"][EXPIRES_TAG])
        assert expires and before + timedelta(hours=2) < expires < before + timedelta(hours=4)
    nsg = next(r for r in arm.resources.values() if "networksecuritygroups" in r["id"].lower())
    (rule,) = nsg["properties"]["securityRules"]
    assert rule["properties"]["sourceAddressPrefix"] == "127.0.0.1/32"
    assert rule["properties"]["destinationPortRange"] == "22"
    vm = next(r for r in arm.resources.values() if "virtualmachines" in r["id"].lower())
    assert vm["properties"]["diagnosticsProfile"]["bootDiagnostics"]["enabled"] is True
    assert m.facts.instance_id == vm["properties"]["vmId"] and m.facts.datasource == "Azure"
    assert m.console_log() == ""
    assert console.announced_host_keys(m.console_log()) == [HOST_KEY]
    m.hard_reset()
    assert arm.restarts == 1
    assert m.destroy() == [] and arm.leftovers() == {}
    assert group["name"].startswith("dct-")


def test_user_data_marks_the_launch_with_the_vm_id(arm: FakeArm, tmp_path: Path) -> None:
    """Azure assigns the vmId at creation: the marker is a template cloud-init renders in the guest."""
    m = launch(arm, tmp_path)
    vm = next(r for r in arm.resources.values() if "virtualmachines" in r["id"].lower())
    user_data = base64.b64decode(vm["properties"]["osProfile"]["customData"]).decode()
    assert user_data.startswith("## template: jinja\n#cloud-config\n")
    (marker,) = yaml.safe_load(user_data.split("\n", 1)[1])["write_files"]
    assert (marker["path"], marker["content"]) == (MARKER_PATH, INSTANCE_ID_TEMPLATE + "\n")
    assert m.destroy() == []


def test_throttling_is_retried(arm: FakeArm, tmp_path: Path) -> None:
    arm.fail("PUT virtualmachines", 429, "TooManyRequests", times=2)
    m = launch(arm, tmp_path)
    assert arm.calls.count("PUT virtualmachines") == 3
    assert m.destroy() == [] and arm.leftovers() == {}


def test_a_status_request_that_fails_restarts_the_operation(arm: FakeArm, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """With the SDK's retries off a poller that met a 500 cannot go on: the operation is started
    again (ARM's PUT is idempotent), the retry logged, and the launch succeeds."""
    from debian_cloud_tests import backoff

    monkeypatch.setattr(errors, "sleep", lambda s: None)
    monkeypatch.setattr(backoff, "RETRIES", [])
    before = arm.calls.count("PUT networksecuritygroups")
    arm.fail("GET asyncops", 500, "InternalServerError")
    m = launch(arm, tmp_path)
    assert arm.calls.count("PUT networksecuritygroups") == before + 2  # the first operation polled
    assert [(r.action, r.cause) for r in backoff.RETRIES] == [
        ("network_security_groups.create", "500 InternalServerError")]
    assert m.destroy() == [] and arm.leftovers() == {}


def test_throttling_gives_up(arm: FakeArm, tmp_path: Path) -> None:
    arm.fail("PUT virtualmachines", 429, "TooManyRequests", times=backoff.API.attempts)
    with pytest.raises(ThrottledError, match="still throttled"):
        launch(arm, tmp_path)
    assert arm.leftovers() == {}


@pytest.mark.parametrize("as_operation", [False, True])
def test_quota_fails_at_once_and_leaves_nothing(arm: FakeArm, tmp_path: Path, as_operation: bool) -> None:
    if as_operation:
        arm.fail_operation("PUT virtualmachines", "QuotaExceeded")
    else:
        arm.fail("PUT virtualmachines", 409, "OperationNotAllowed", message="cores quota exceeded")
    with pytest.raises(QuotaError, match=r"azure: virtual_machines\.create: a subscription quota"):
        launch(arm, tmp_path)
    assert arm.calls.count("PUT virtualmachines") == 1 and arm.leftovers() == {}


def test_vm_stuck_creating_times_out_and_leaves_nothing(arm: FakeArm, tmp_path: Path) -> None:
    arm.stuck = True
    with pytest.raises(ProviderError, match="still"):
        launch(arm, tmp_path, replace(make_spec(), boot_timeout=2))
    assert arm.leftovers() == {}


def test_a_launch_waiting_in_a_thread_stops_with_the_run_and_leaves_nothing(
        arm: FakeArm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run's stop request ends the VM's creation wait, and the group is deleted all the
    same: the clean-up's own waits are not cut short by it."""
    arm.stuck = True
    spec = replace(make_spec(), boot_timeout=600)
    outcome = stopped_mid_launch(monkeypatch, lambda: launch(arm, tmp_path, spec),
                                 lambda: "PUT virtualmachines" in arm.calls)
    assert isinstance(outcome, KeyboardInterrupt), outcome
    assert arm.calls.count("DELETE resourcegroups") == 1 and arm.leftovers() == {}


def test_a_group_delete_that_fails_once_is_retried(arm: FakeArm, tmp_path: Path) -> None:
    m = launch(arm, tmp_path)
    arm.fail_operation("DELETE resourcegroups", "InternalServerError")
    assert m.destroy() == [] and arm.leftovers() == {}
    assert arm.calls.count("DELETE resourcegroups") == 2


def test_gc_deletes_expired_groups_only(arm: FakeArm, tmp_path: Path) -> None:
    launch(arm, tmp_path)
    kwargs = client_kwargs(arm)
    assert collect_garbage(datetime.now(UTC), StubCredential(), SUBSCRIPTION, **kwargs) == []
    assert len(collect_garbage(datetime.now(UTC) + timedelta(hours=4), StubCredential(), SUBSCRIPTION,
                               **kwargs)) == 1
    assert arm.leftovers() == {}


def test_missing_credentials_is_one_line(tmp_path: Path) -> None:
    env = {k: "" for k in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET")}
    env.update(AZURE_SUBSCRIPTION_ID=SUBSCRIPTION, HOME=str(tmp_path), AZURE_CONFIG_DIR=str(tmp_path / "az"),
               IDENTITY_ENDPOINT="", MSI_ENDPOINT="", IMDS_ENDPOINT="http://127.0.0.1:9",
               AZURE_POD_IDENTITY_AUTHORITY_HOST="http://127.0.0.1:9")
    run = run_suites(tmp_path, "--provider=azure", f"--image={URN}", f"--region={LOCATION}", env=env,
                     timeout=180)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.rc == UsageError.exit_code, run.explain()
    assert len(lines) == 1 and lines[0].startswith("debian-cloud-tests: error: azure: "), run.explain()
    assert "AZURE_CLIENT_ID" in lines[0]


def test_validate_reads_a_gallery_image_version_and_its_definition(arm: FakeArm) -> None:
    """The version must exist and be replicated to the region; its definition says the
    architecture (an arm64 size follows) and the Hyper-V generation (the firmware)."""
    version = arm.add_gallery_image("debian-12-arm64", arch="Arm64", generation="V2")
    spec = provider(arm).validate(make_spec(version))
    assert (spec.arch, spec.firmware, spec.instance_type) == (Arch.ARM64, Firmware.UEFI,
                                                              "Standard_B2ps_v2")
    gen1 = provider(arm).validate(make_spec(arm.add_gallery_image("debian-12-gen1", generation="V1")))
    assert (gen1.arch, gen1.firmware, gen1.instance_type) == (Arch.AMD64, Firmware.BIOS, "Standard_B2s")
    assert arm.calls.count("GET versions") == 2 and arm.calls.count("GET images") == 2
    assert arm.leftovers() == {}


def test_validate_reads_a_managed_image(arm: FakeArm) -> None:
    image = arm.add_managed_image(generation="V1")
    spec = provider(arm).validate(make_spec(image))
    assert (spec.arch, spec.firmware, spec.instance_type) == (Arch.AMD64, Firmware.BIOS, "Standard_B2s")
    uefi = provider(arm).validate(make_spec(arm.add_managed_image("gen2", generation="V2")))
    assert uefi.firmware is Firmware.UEFI
    with pytest.raises(ArchFirmwareError, match="boots with bios"):
        provider(arm).validate(replace(make_spec(image), firmware=Firmware.UEFI))
    assert arm.leftovers() == {}


def test_a_gallery_image_boots_from_its_id(arm: FakeArm, tmp_path: Path) -> None:
    version = arm.add_gallery_image()
    m = launch(arm, tmp_path, make_spec(version))
    vm = next(r for r in arm.resources.values() if "virtualmachines" in r["id"].lower())
    assert vm["properties"]["storageProfile"]["imageReference"] == {"id": version}
    assert m.destroy() == [] and arm.leftovers() == {}


@pytest.mark.parametrize(("kind", "change", "match"), [
    ("gallery", lambda i: i.replace("/versions/1.0.0", "/versions/9.9.9"), "no such gallery image version"),
    ("gallery", lambda i: i.replace("/galleries/debian/", "/galleries/nope/"), "no such gallery image"),
    ("gallery", lambda i: i.replace("/resourceGroups/images/", "/resourceGroups/nope/"), "no such gallery"),
    ("managed", lambda i: i + "-nope", "no such managed image"),
    ("managed", lambda i: i.replace(SUBSCRIPTION, "11111111-1111-1111-1111-111111111111"),
     "no such managed image"),
])
def test_an_image_id_that_does_not_exist_is_one_line(arm: FakeArm, kind: str, change: Any,
                                                     match: str) -> None:
    image = arm.add_gallery_image() if kind == "gallery" else arm.add_managed_image()
    with pytest.raises(ImageNotFoundError, match=match) as info:
        provider(arm).validate(make_spec(change(image)))
    assert "\n" not in str(info.value) and arm.leftovers() == {}


def test_an_image_elsewhere_is_refused_before_anything_exists(arm: FakeArm) -> None:
    east = arm.add_gallery_image("debian-12-east", regions=("East US",))
    with pytest.raises(ImageNotFoundError, match=r"not replicated to westeurope \(only eastus\)"):
        provider(arm).validate(make_spec(east))
    managed = arm.add_managed_image("east", location="eastus")
    with pytest.raises(ImageNotFoundError, match="the managed image is in eastus, not --region westeurope"):
        provider(arm).validate(make_spec(managed))
    assert arm.leftovers() == {}


def test_retry_after_is_honoured_within_bounds(arm: FakeArm, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A 429 with Retry-After: waiting less only earns another 429; an absurd ask is capped."""
    from debian_cloud_tests import backoff

    sleeps: list[float] = []
    monkeypatch.setattr(errors, "sleep", sleeps.append)
    arm.fail("PUT virtualmachines", 429, "TooManyRequests", times=2, retry_after="7")
    arm.fail("PUT networksecuritygroups", 429, "TooManyRequests", retry_after="86400")
    m = launch(arm, tmp_path)
    assert arm.calls.count("PUT virtualmachines") == 3
    assert sorted(sleeps) == [7.0, 7.0, backoff.MAX_RETRY_AFTER]
    assert m.destroy() == [] and arm.leftovers() == {}


def _sdk_retries(client: Any) -> list[int]:
    """The total of every azure-core RetryPolicy in *client*'s pipeline."""
    from azure.core.pipeline.policies import RetryPolicy

    return [p.total_retries for p in client._client._pipeline._impl_policies if isinstance(p, RetryPolicy)]


def test_production_clients_have_the_sdk_retries_off() -> None:
    """The clients session.make_clients builds (as the provider and gc do) retry nothing
    themselves: errors.call's attempts are the only ones, each logged."""
    from debian_cloud_tests.providers.azure import session

    clients = AzureProvider(StubCredential(), SUBSCRIPTION).clients()
    other = "11111111-1111-1111-1111-111111111111"
    for client in (clients.resource, clients.network, clients.compute, clients.compute_in(other),
                   session.make_clients(StubCredential(), SUBSCRIPTION).compute):
        assert _sdk_retries(client) == [0], type(client).__name__


@pytest.mark.parametrize(("status", "code"), [(500, "InternalServerError"), (429, "TooManyRequests")])
def test_a_transient_answer_is_retried_by_our_loop_only(arm: FakeArm, monkeypatch: pytest.MonkeyPatch,
                                                        status: int, code: str) -> None:
    """Every request the fake saw is one of errors.call's attempts, and each retry is logged."""
    from debian_cloud_tests import backoff

    sleeps: list[float] = []
    monkeypatch.setattr(errors, "sleep", sleeps.append)
    monkeypatch.setattr(backoff, "RETRIES", [])
    arm.fail("GET resourcegroups", status, code, times=2)
    assert collect_garbage(datetime.now(UTC), StubCredential(), SUBSCRIPTION, **client_kwargs(arm)) == []
    assert arm.calls.count("GET resourcegroups") == 3
    assert len(sleeps) == 2
    logged = [(r.action, r.cause) for r in backoff.RETRIES]
    assert logged == [("resource_groups.list", f"{status} {code}")] * 2


def test_a_lost_connection_is_retried_by_our_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the SDK's retries off, a connection that failed is errors.call's to retry."""
    from azure.core.exceptions import ServiceRequestError

    monkeypatch.setattr(errors, "sleep", lambda s: None)
    answers: list[Any] = [ServiceRequestError("connection refused"), "ok"]

    def flaky() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return str(answer)

    assert errors.call(flaky, "resource_groups.list") == "ok" and answers == []


@pytest.fixture
def https_arm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeArm, dict[str, str]]]:
    """The fake over HTTPS (bearer tokens are sent over TLS only) with a managed-identity
    endpoint, and a process environment that finds both through DefaultAzureCredential, as a
    user's run would: no service principal, no CLI login, every metadata endpoint closed."""
    import ssl

    import trustme

    ca = trustme.CA()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(tls)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "MSI_ENDPOINT",
                 "AZURE_FEDERATED_TOKEN_FILE", "AZURE_USERNAME"):  # unset: set but empty means another thing
        monkeypatch.delenv(name, raising=False)
    with running_arm(tls) as fake:
        env = dict(AZURE_SUBSCRIPTION_ID=SUBSCRIPTION, DCT_AZURE_ARM_ENDPOINT=fake.url,
                   IDENTITY_ENDPOINT=f"{fake.url}/msi/token", IDENTITY_HEADER=MI_SECRET,
                   REQUESTS_CA_BUNDLE=str(ca_file), SSL_CERT_FILE=str(ca_file), HOME=str(tmp_path),
                   AZURE_CONFIG_DIR=str(tmp_path / "az"), IMDS_ENDPOINT="http://127.0.0.1:9",
                   AZURE_POD_IDENTITY_AUTHORITY_HOST="http://127.0.0.1:9", DCT_SOURCE_ADDRESS="127.0.0.1")
        yield fake, env


MI_SECRET = "managed-identity-header-do-not-print"


@pytest.mark.parametrize(("where", "status"), [("token", 401), ("token", 400), ("arm", 401)])
def test_refused_credentials_are_one_line_without_the_secret(https_arm: tuple[FakeArm, dict[str, str]],
                                                             tmp_path: Path, where: str,
                                                             status: int) -> None:
    fake, env = https_arm
    if where == "token":
        fake.token_refusal = (status, "invalid_client")
    else:
        fake.fail("GET versions", status, "InvalidAuthenticationToken", times=10,
                  message="The access token is invalid.")
    run = run_suites(tmp_path, "--provider=azure", f"--image={URN}", f"--region={LOCATION}", env=env,
                     timeout=180)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.rc == UsageError.exit_code, run.explain()
    assert len(lines) == 1 and lines[0].startswith("debian-cloud-tests: error: azure: "), run.explain()
    assert "AZURE_CLIENT_ID" in lines[0] and "az login" in lines[0], run.explain()
    said = ("the credentials were refused (managed identity (IDENTITY_ENDPOINT))" if where == "token"
            else "virtual_machine_images.list was refused (InvalidAuthenticationToken")
    assert said in lines[0], run.explain()
    junit = tmp_path / "results.xml"
    seen = run.stdout + run.stderr + (junit.read_text() if junit.exists() else "")
    assert "Traceback" not in seen and MI_SECRET not in seen and "stub-token" not in seen
    assert fake.leftovers() == {}


def test_cli_gc_removes_what_a_killed_run_left(https_arm: tuple[FakeArm, dict[str, str]],
                                               tmp_path: Path) -> None:
    """`debian-cloud-tests gc --provider azure --subscription S`: the expired group of a run
    killed hours ago goes with everything in it; a live run's group and others' stay."""
    import os

    fake, env = https_arm
    base = f"/subscriptions/{SUBSCRIPTION}/resourceGroups"

    def group(name: str, tags: dict[str, str], location: str = LOCATION) -> str:
        path = f"{base}/{name}"
        fake.resources[path.lower()] = {"id": path, "name": name, "location": location, "tags": tags}
        return path

    old = group("dct-old-0badc0de", {RUN_ID_TAG: "old", EXPIRES_TAG: "2020-01-01T00:00:00Z"})
    vm = f"{old}/providers/Microsoft.Compute/virtualMachines/dct-old-0badc0de"
    fake.resources[vm.lower()] = {"id": vm, "name": "dct-old-0badc0de", "properties": {}}
    live = group("dct-live-00000000", {RUN_ID_TAG: "live",
                                       EXPIRES_TAG: (datetime.now(UTC) + timedelta(hours=3)).strftime(
                                           "%Y-%m-%dT%H:%M:%SZ")})
    theirs = group("web", {"owner": "someone"})
    env = {**os.environ, **env, "AZURE_SUBSCRIPTION_ID": "", "TMPDIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "debian_cloud_tests.cli", "gc", "--provider", "azure",
                          "--subscription", SUBSCRIPTION], capture_output=True, text=True, timeout=180,
                         cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["azure: deleted dct-old-0badc0de"]
    assert sorted(fake.resources) == sorted([live.lower(), theirs.lower()])
    assert MI_SECRET not in out.stdout + out.stderr


OTHER_RUN = "20260101120000-def456"


def test_a_killed_runs_guard_removes_that_run_and_nothing_else(
        https_arm: tuple[FakeArm, dict[str, str]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGKILL leaves the run dir to its guard: reaping it deletes that run's resource group at
    once, with credentials from the environment as the run's; another run's and others' stay."""
    fake, env = https_arm
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    launch(fake, tmp_path)
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    p = provider(fake)
    other = p.launch(p.validate(replace(make_spec(), run_id=OTHER_RUN)), other_dir)
    path = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/web"
    fake.resources[path.lower()] = {"id": path, "name": "web", "location": LOCATION,
                                    "tags": {RUN_ID_TAG: "20260101120000-abc12*"}}

    assert rundir.reap(tmp_path / "run")

    assert not (tmp_path / "run").exists()
    assert sorted(g["name"] for g in fake.groups()) == sorted([other.group, "web"])
    assert collect_run(RUN_ID) == [], "a second collect finds nothing"
    assert other.destroy() == [] and [g["name"] for g in fake.groups()] == ["web"]


def test_the_record_is_written_before_the_first_create(arm: FakeArm, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    run_dir = tmp_path / "run"
    seen: list[tuple[str, dict[str, str] | None]] = []
    handle = arm.handle

    def watch(method: str, path: str, *args: Any) -> Any:
        if method == "PUT":
            record = run_dir / rundir.CLOUD_FILE
            seen.append((path, json.loads(record.read_text()) if record.exists() else None))
        return handle(method, path, *args)

    monkeypatch.setattr(arm, "handle", watch)
    launch(arm, tmp_path).destroy()
    assert seen and seen[0][0].lower().split("/")[-2] == "resourcegroups", "the group comes first"
    expected = {"provider": "azure", "subscription": SUBSCRIPTION, "endpoint": arm.url, "run_id": RUN_ID}
    assert [record for _, record in seen] == [expected] * len(seen)


@pytest.mark.parametrize("run_id", ["*", "", "20260101120000-*", "20260101120000-abc12?",
                                    "20260101120000-abc123\n", "x' or tagValue ne '"])
def test_a_bad_run_id_is_refused_without_a_request(arm: FakeArm, run_id: str) -> None:
    with pytest.raises(UsageError, match="is not one this tool makes"):
        collect_run(run_id, SUBSCRIPTION, arm.url, StubCredential(), **client_kwargs(arm))
    assert arm.calls == []


def test_secure_boot_launches_with_trusted_launch(arm: FakeArm, tmp_path: Path) -> None:
    """--secure-boot is a launch parameter on Azure: Trusted Launch with Secure Boot on."""
    m = launch(arm, tmp_path, make_spec(secure_boot=True))
    vm = next(r for r in arm.resources.values() if "virtualmachines" in r["id"].lower())
    assert vm["properties"]["securityProfile"] == {
        "securityType": "TrustedLaunch", "uefiSettings": {"secureBootEnabled": True, "vTpmEnabled": True}}
    assert m.destroy() == [] and arm.leftovers() == {}


def test_secure_boot_on_a_generation_1_image_is_refused_before_anything_exists(arm: FakeArm) -> None:
    from debian_cloud_tests.errors import SecureBootUnavailableError

    image = arm.add_managed_image(generation="V1")
    with pytest.raises(SecureBootUnavailableError, match="needs a generation 2 image"):
        provider(arm).validate(make_spec(image, secure_boot=True))
    assert arm.leftovers() == {}

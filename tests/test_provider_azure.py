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
from debian_cloud_tests.providers.azure.gc import collect_garbage
from debian_cloud_tests.providers.azure.provider import EXPIRES_TAG, RUN_ID_TAG, parse_expiry

from debian_cloud_tests import console
from debian_cloud_tests.errors import ImageNotFoundError, ProviderError, UsageError
from debian_cloud_tests.provider import get_provider
from debian_cloud_tests.seed import INSTANCE_ID_TEMPLATE, MARKER_PATH
from debian_cloud_tests.spec import Arch, Firmware, LaunchSpec

from .conftest import run_suites
from .fakes.azure_arm import HOST_KEY, LOCATION, SUBSCRIPTION, FakeArm, running_arm

RUN_ID = "20260101120000-abc123"
URN = "Debian:debian-12:12-gen2:latest"


class StubCredential:
    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken("stub-token", 4102444800)


def client_kwargs(fake: FakeArm) -> dict[str, Any]:
    from azure.core.pipeline.policies import HeadersPolicy

    return {"base_url": fake.url, "authentication_policy": HeadersPolicy({"Authorization": "Bearer stub"}),
            "polling_interval": 0, "retry_total": 0}


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


def test_throttling_gives_up(arm: FakeArm, tmp_path: Path) -> None:
    arm.fail("PUT virtualmachines", 429, "TooManyRequests", times=errors.ATTEMPTS)
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

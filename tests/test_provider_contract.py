"""The same provider-independent contract for every cloud provider whose fake exists: validate,
launch, read host keys from the console, reset, destroy, and nothing left in the fake.

Each provider is driven through its real SDK against its fake on 127.0.0.1; no VM is booted.
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from debian_cloud_tests import console
from debian_cloud_tests.machine import Machine
from debian_cloud_tests.provider import Provider
from debian_cloud_tests.spec import Arch, LaunchSpec

pytest_plugins = ["tests.fakes.aws_env"]

RUN_ID = "20260101120000-c0ffee"


@dataclass
class Cloud:
    """One provider in front of its fake."""

    name: str
    provider: Provider
    spec: LaunchSpec
    leftovers: Callable[[], dict[str, list[str]]]
    resets: Callable[[], int]


def _aws(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    from debian_cloud_tests.providers.aws import AwsProvider, instance

    from .fakes.moto_ec2 import leftovers

    world = request.getfixturevalue("aws")
    monkeypatch.setattr(instance, "POLL_INTERVAL", 0.0)
    spec = LaunchSpec(image=world.ami, arch=Arch.AMD64, run_id=RUN_ID, boot_timeout=60,
                      options={"region": world.region})
    yield Cloud("aws", AwsProvider(), spec, lambda: leftovers(world.moto),
                lambda: len(world.machines.reboots))


def _gce(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    from debian_cloud_tests.providers.gce import GceProvider, instance, retry
    from google.auth.credentials import AnonymousCredentials

    from .fakes.gce_compute import PROJECT, ZONE, running_gce

    monkeypatch.setenv("DCT_SOURCE_ADDRESS", "127.0.0.1")
    monkeypatch.setattr(retry, "sleep", lambda s: None)
    monkeypatch.setattr(instance, "POLL_INTERVAL", 0.0)
    with running_gce() as fake:
        fake.empty_console_reads = 1
        spec = LaunchSpec(image="projects/debian-cloud/global/images/family/debian-12",
                          arch=Arch.AMD64, run_id=RUN_ID, boot_timeout=60, options={"zone": ZONE})
        provider = GceProvider(project=PROJECT, credentials=AnonymousCredentials(), endpoint=fake.url)
        yield Cloud("gce", provider, spec, fake.leftovers, lambda: len(fake.resets))


def _azure(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    from debian_cloud_tests.providers.azure import AzureProvider, errors, machine

    from .fakes.azure_arm import LOCATION, SUBSCRIPTION, running_arm
    from .test_provider_azure import StubCredential, client_kwargs

    monkeypatch.setenv("DCT_SOURCE_ADDRESS", "127.0.0.1")
    monkeypatch.setattr(errors, "sleep", lambda s: None)
    monkeypatch.setattr(machine, "POLL_INTERVAL", 0.0)
    with running_arm() as fake:
        fake.empty_console_reads = 1
        spec = LaunchSpec(image="Debian:debian-12:12-gen2:latest", arch=Arch.AMD64, run_id=RUN_ID,
                          boot_timeout=60, options={"region": LOCATION})
        provider = AzureProvider(StubCredential(), SUBSCRIPTION, **client_kwargs(fake))
        yield Cloud("azure", provider, spec, fake.leftovers, lambda: fake.restarts)


def _openstack(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    from debian_cloud_tests.providers.openstack import OpenStackProvider, instance, retry

    from .fakes.openstack_cloud import running_openstack

    monkeypatch.setenv("DCT_SOURCE_ADDRESS", "127.0.0.1")
    monkeypatch.setattr(retry, "sleep", lambda s: None)
    monkeypatch.setattr(instance, "POLL_INTERVAL", 0.0)
    tmp_path = request.getfixturevalue("tmp_path")
    with running_openstack() as fake:
        fake.empty_console_reads = 1
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(fake.clouds_yaml(tmp_path / "clouds.yaml")))
        spec = LaunchSpec(image="debian-12-genericcloud-amd64", arch=Arch.AMD64, run_id=RUN_ID,
                          boot_timeout=60, options={"os_cloud": "fake"})
        yield Cloud("openstack", OpenStackProvider(), spec, fake.leftovers,
                    lambda: sum(kind == "HARD" for _, kind in fake.reboots))


CLOUDS: dict[str, Callable[..., Iterator[Cloud]]] = {"aws": _aws, "gce": _gce, "azure": _azure,
                                                     "openstack": _openstack}


@pytest.fixture(params=sorted(CLOUDS))
def cloud(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    yield from CLOUDS[request.param](request, monkeypatch)


def _wait_for_keys(machine: Machine, tries: int = 20) -> list[str]:
    for _ in range(tries):
        keys = console.announced_host_keys(machine.console_log())
        if keys:
            return keys
    return []


def test_launch_console_reset_destroy_leaves_nothing(cloud: Cloud, tmp_path: Path) -> None:
    spec = cloud.provider.validate(cloud.spec)
    assert spec.instance_type and spec.firmware is not None and spec.run_id == RUN_ID
    assert cloud.leftovers() == {}, "validate must create nothing"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    machine: Any = cloud.provider.launch(spec, run_dir)
    try:
        assert machine.facts.provider == cloud.name and machine.facts.instance_id
        assert machine.facts.datasource and machine.facts.arch is spec.arch
        assert machine.ssh.port == 22 and machine.ssh.user == spec.ssh_user
        assert stat.S_IMODE(machine.ssh.key_file.stat().st_mode) == 0o600
        assert machine.ssh.key_file.parent == run_dir
        assert machine.host_keys_hint() is None  # console is the source by default
        assert machine.is_alive()
        assert _wait_for_keys(machine), "the console never showed the host keys"
        machine.hard_reset()
        assert cloud.resets() == 1
        assert cloud.leftovers() != {}
    finally:
        errors = machine.destroy()
    assert errors == []
    assert cloud.leftovers() == {}
    assert machine.destroy() == []
    assert not machine.is_alive()

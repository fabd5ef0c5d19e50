"""The same provider-independent contract for every provider whose fake exists: validate, launch,
SSH in, read host keys from the console, reset, destroy, and nothing left.

Each cloud provider is driven through its real SDK against its fake on 127.0.0.1; no VM is
booted, so its machines answer no SSH here: the clouds' SSH step is covered by their QEMU-backed
end-to-end tests (tests/test_provider_*_e2e.py).  The ssh provider's row runs against a real
sshd: it logs in and runs a command with the verified host key, and it says why it offers no
console and no platform reset (Machine.not_offered) instead of skipping them.  The steps each
row covers are listed in docs/providers.md.
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from debian_cloud_tests import console, readiness
from debian_cloud_tests.machine import Machine
from debian_cloud_tests.provider import Provider
from debian_cloud_tests.spec import Arch, LaunchSpec, ProviderSettings

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
    #: the provider creates the machine (an instance id, a datasource, a fresh key in the run dir)
    creates: bool = True
    #: its machines answer SSH from here (the clouds' fakes have no guest behind the instance)
    reachable: bool = False
    port: int = 22
    #: the option naming the user's own key, for a provider that creates nothing
    key_option: str = "ssh_key"


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


def _ssh(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    from debian_cloud_tests.providers.ssh import SshProvider
    from debian_cloud_tests.providers.ssh.gc import collect_garbage

    server = request.getfixturevalue("sshd")  # a real OpenSSH server on 127.0.0.1 (skips without)
    assert server.authorized_keys is not None
    authorised = server.authorized_keys.read_text()
    spec = LaunchSpec(image="debian-12-genericcloud-amd64", arch=Arch.AMD64, run_id=RUN_ID,
                      boot_timeout=20, options={"host": f"root@127.0.0.1:{server.port}",
                                                "ssh_key": str(server.client_key),
                                                "host_key": server.host_key})

    def leftovers() -> dict[str, list[str]]:
        """Nothing to find: gc finds nothing and the host's authorised keys are as they were."""
        assert server.authorized_keys is not None
        changed = server.authorized_keys.read_text() != authorised
        found = {"gc": collect_garbage(), "authorized_keys": ["changed"] if changed else []}
        return {k: v for k, v in found.items() if v}

    yield Cloud("ssh", SshProvider(), spec, leftovers, lambda: 0, creates=False, reachable=True,
                port=server.port)


CLOUDS: dict[str, Callable[..., Iterator[Cloud]]] = {"aws": _aws, "gce": _gce, "azure": _azure,
                                                     "openstack": _openstack, "ssh": _ssh}


@pytest.fixture(params=sorted(CLOUDS))
def cloud(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    yield from CLOUDS[request.param](request, monkeypatch)


def _wait_for_keys(machine: Machine, tries: int = 20) -> list[str]:
    for _ in range(tries):
        keys = console.announced_host_keys(machine.console_log())
        if keys:
            return keys
    return []


def _ssh_step(machine: Machine, spec: LaunchSpec) -> None:
    """Log in with the verified host key and get a command's output back."""
    ready = readiness.wait_for_ssh(machine, spec.boot_timeout)
    assert ready.client is not None, ready.login_error
    try:
        assert ready.host_keys == (machine.host_keys_hint() or ready.host_keys)
        _, out, _ = ready.client.exec_command("echo contract-$((6 * 7))", timeout=10)
        assert out.read().decode().strip() == "contract-42"
        assert out.channel.recv_exit_status() == 0
    finally:
        ready.client.close()


def test_launch_ssh_console_reset_destroy_leaves_nothing(cloud: Cloud, tmp_path: Path) -> None:
    check_contract(cloud, tmp_path)


def check_contract(cloud: Cloud, tmp_path: Path) -> None:
    """Validate, launch, SSH in, console or not, reset or not, destroy: nothing left."""
    spec = cloud.provider.validate(cloud.spec)
    assert spec.run_id == RUN_ID
    if cloud.creates:
        assert spec.instance_type and spec.firmware is not None
    assert cloud.leftovers() == {}, "validate must create nothing"
    assert isinstance(spec.settings, ProviderSettings), "validate must hand launch its typed settings"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    # launch reads what validate worked out, never the options again
    machine: Any = cloud.provider.launch(replace(spec, options={}), run_dir)
    try:
        assert machine.facts.provider == cloud.name and machine.facts.arch is spec.arch
        assert machine.ssh.port == cloud.port and machine.ssh.user == spec.ssh_user
        assert stat.S_IMODE(machine.ssh.key_file.stat().st_mode) == 0o600
        if cloud.creates:  # a fresh key of the run's, for a machine of its own
            assert machine.facts.instance_id and machine.facts.datasource
            assert machine.ssh.key_file.parent == run_dir
        else:  # the user's own key, for their host: nothing written
            assert machine.ssh.key_file == Path(cloud.spec.options[cloud.key_option])
            assert list(run_dir.iterdir()) == []
        assert machine.is_alive()
        if cloud.reachable:
            _ssh_step(machine, spec)
        # else: no guest behind the fake's instance; see tests/test_provider_<name>_e2e.py
        if "console" in machine.not_offered:
            assert machine.not_offered["console"].startswith(f"{cloud.name}: ")
            assert machine.console_log() == "" and machine.host_keys_hint()
        else:
            assert machine.host_keys_hint() is None  # console is the source by default
            assert _wait_for_keys(machine), "the console never showed the host keys"
        if "reset" in machine.not_offered:
            assert machine.not_offered["reset"].startswith(f"{cloud.name}: ")
        else:
            machine.hard_reset()
            assert cloud.resets() == 1
        # a provider that offers the peer link has machines that make it (network_perf)
        links = type(machine).link_to is not Machine.link_to
        assert links == (cloud.provider.peer_link_refused is None), cloud.provider.peer_link_refused
        if cloud.creates:
            assert cloud.leftovers() != {}
    finally:
        errors = machine.destroy()
    assert errors == []
    assert cloud.leftovers() == {}
    assert machine.destroy() == []
    if cloud.creates:
        assert not machine.is_alive()

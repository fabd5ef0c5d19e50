"""End to end on an emulated OpenStack: the plugin runs the suites with ``--provider=openstack``
through the real openstacksdk against the fake cloud, whose server is a real QEMU guest booted
from the test image (see tests/fakes/openstack_cloud.py).

The guest configures itself through cloud-init's OpenStack datasource from an emulated Nova
metadata service, the provider reaches it on its fixed address port 22 with the host key read
from the console log, and afterwards nothing is left in the cloud or on this machine.

The network_perf suite's two servers need a project network between them: that test runs in a
network and mount namespace of the test's own (tests/fakes/netns.py), where the servers' fixed
addresses are private ones and a guest reaches the other's only on a port its security group
opens; the emulated cloud, its guests, a DNS server answering every name NXDOMAIN and the plugin
run live in it, and nothing can leave it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from debian_cloud_tests import throughput
from debian_cloud_tests.datasources.dns import DnsServer
from debian_cloud_tests.plugin import suites_dir

from .conftest import run_suites
from .fakes.netns import PrivateNamespace
from .fakes.openstack_cloud import PRIVATE_NET, FakeOpenStack, running_openstack
from .fakes.qemu_guests import QemuGuests, assert_gone, boot_budget_options

pytestmark = pytest.mark.e2e
IMAGE = "debian-12-genericcloud-amd64"
#: the flavor the provider picks for the test image: one vCPU, two guests on two emulating cores
FLAVOR = "m1.small"
#: Mbit/s between two emulated servers (each guest's user network, then the other's forward),
#: for the user's table: the shipped one sets none for the fake's flavor
FLOOR = 10


@pytest.fixture
def emulated_openstack(good_image: Path, monkeypatch: pytest.MonkeyPatch,
                       tmp_path: Path) -> Iterator[FakeOpenStack]:
    monkeypatch.setenv("DCT_SOURCE_ADDRESS", "127.0.0.1")
    guests = QemuGuests("nova")
    try:
        with running_openstack() as fake:
            fake.guests = guests
            (image_id,) = [i for i, img in fake.images.items() if img["name"] == IMAGE]
            guests.images[image_id] = good_image
            monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(fake.clouds_yaml(tmp_path / "clouds.yaml")))
            monkeypatch.setenv("OS_CLOUD", "fake")
            yield fake
    finally:
        guests.close()


@pytest.mark.cost(220)
def test_suites_pass_on_emulated_openstack_and_nothing_is_left(emulated_openstack: FakeOpenStack,
                                                               tmp_path: Path) -> None:
    fake = emulated_openstack
    assert fake.guests is not None
    # BVT, cloud-init (the expected datasource) and metadata (the guest's view against
    # PlatformFacts). The network suite is left out: the emulated guest network is closed.
    suites = [str(suites_dir() / name) for name in ("bvt", "cloud_init", "metadata")]
    run = run_suites(tmp_path, "--provider=openstack", f"--image={IMAGE}", *suites,
                     *boot_budget_options(), timeout=900)
    ran = {c: s for c, s in run.checks.items() if c.startswith(("bvt.", "cloud_init.", "metadata."))}
    assert {c.split(".")[0] for c in ran} == {"bvt", "cloud_init", "metadata"}, run.explain()
    bad = {c: s for c, s in ran.items() if s not in ("passed", "skipped")}
    assert not bad, f"{bad}\n{run.explain()}"
    for check in ("cloud_init.datasource_expected", "cloud_init.log_free_of_warnings",
                  "cloud_init.host_key_fingerprints_on_console", "metadata.instance_id_matches",
                  "metadata.hostname_matches",
                  "metadata.region_and_zone_match", "metadata.user_data_applied",
                  "metadata.vcpus_match", "metadata.memory_matches", "metadata.instance_type_matches"):
        assert ran.get(check) == "passed", f"{check}: {ran.get(check)}\n{run.explain()}"

    # the run went through Nova as a user's would, and the guest read Nova's metadata
    (guest,) = fake.guests.guests.values()
    assert run.props["provider"] == "openstack" and run.props["instance_id"] == guest.instance_id
    assert run.props["openstack_region"] == "RegionOne"
    requests = guest.metadata.requests  # type: ignore[attr-defined]
    assert any(r.startswith("GET /openstack/") and "meta_data.json" in r for r in requests)
    assert "DataSourceOpenStack" in fake.guests.consoles[guest.instance_id]

    # nothing left: not in the cloud, not on this machine
    assert fake.leftovers() == {}
    assert_gone(guest, run.props["run_id"])


@pytest.fixture
def openstack_network(good_image: Path, namespace: PrivateNamespace, monkeypatch: pytest.MonkeyPatch,
                      tmp_path: Path) -> Iterator[FakeOpenStack]:
    """The emulated cloud with a private project network, all in the test's namespace."""
    monkeypatch.setenv("DCT_SOURCE_ADDRESS", "127.0.0.1")
    guests = QemuGuests("nova", enter=namespace.enter_mounts)
    try:
        # this thread binds the servers' sockets and starts their threads in the namespace (and
        # stays there for the test): the fake's request threads, which start the guests and
        # their metadata services, are in it too
        with namespace.network(), running_openstack() as fake:
            dns = DnsServer({}).start()
            try:
                fake.guests, fake.namespace = guests, namespace
                (image_id,) = [i for i, img in fake.images.items() if img["name"] == IMAGE]
                guests.images[image_id] = good_image
                monkeypatch.setenv("OS_CLIENT_CONFIG_FILE",
                                   str(fake.clouds_yaml(tmp_path / "clouds.yaml")))
                monkeypatch.setenv("OS_CLOUD", "fake")
                yield fake
            finally:
                guests.close()
                dns.stop()
    finally:
        guests.close()


@pytest.mark.matrix
@pytest.mark.cost(146)
def test_two_servers_measure_their_throughput_across_the_network(
        iperf3_cached: None, openstack_network: FakeOpenStack, namespace: PrivateNamespace,
        tmp_path: Path) -> None:
    """The peer is a second server of the image; the link is the project network with iperf3's
    port opened in each server's group to the other's fixed address (the emulated network
    forwards only what a rule opens); afterwards the rules and everything else are gone."""
    fake = openstack_network
    assert fake.guests is not None
    table = tmp_path / "instance-types.toml"
    table.write_text(f'[openstack."{FLAVOR}"]\nthroughput_floor_mbps = {FLOOR}\n')
    run = run_suites(tmp_path, "--provider=openstack", f"--image={IMAGE}", f"--instance-type={FLAVOR}",
                     f"--instance-types={table}", *boot_budget_options(),
                     select=str(suites_dir() / "network_perf"), timeout=1200, prefix=namespace.prefix())
    assert run.rc == 0, run.explain()
    assert run.checks.get("network_perf.throughput_above_floor") == "passed", run.digest()
    assert float(run.props[throughput.PROPERTY]) >= FLOOR, run.props
    # the traffic went from one guest to the other's fixed address through its forward
    assert len(fake.guests.guests) == 2
    opened = [f for forwards in fake.guests.forwards_seen.values() for f in forwards]
    assert sorted(port for _, port in opened) == [5201, 5201], fake.guests.forwards_seen
    assert all(address.startswith(f"{PRIVATE_NET}.") for address, _ in opened), opened
    assert fake.calls.count("security_group_rules.create") == 2 + 2  # SSH, then the link's
    assert fake.calls.count("security_group_rules.delete") == 2
    assert fake.leftovers() == {}
    for guest in fake.guests.guests.values():
        assert_gone(guest, run.props["run_id"])

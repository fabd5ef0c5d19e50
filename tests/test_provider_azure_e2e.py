"""End to end on an emulated Azure: the plugin runs the suites with ``--provider=azure`` through the
real Azure SDK clients against the fake Resource Manager, whose VM is a real QEMU guest booted
from the test image (see tests/fakes/azure_arm.py and azure_qemu.py).

The plugin runs in another process, as a user's would: it finds its credential through the SDK's
default chain (a managed-identity endpoint of the fake) and talks HTTPS to the fake (a local CA).
The guest is provisioned by cloud-init's Azure datasource from the OVF media, IMDS and the
wireserver; the provider reaches it on its public address port 22 with the host key read from
boot diagnostics, and afterwards nothing is left in the cloud or on this machine.

For the network_perf suite the fake and its guests run in a network and mount namespace of the
test's own (tests/fakes/netns.py), the guests' user networks unrestricted there: each VM's private
address is the namespace's, and a guest reaches another's only on a port that the peerings and the
security rules the provider made open (tests/fakes/azure_net.py).  Nothing can leave the
namespace.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import pytest
import trustme

from debian_cloud_tests import throughput
from debian_cloud_tests.datasources.dns import DnsServer
from debian_cloud_tests.plugin import suites_dir

from .conftest import run_suites
from .fakes.azure_arm import LOCATION, SUBSCRIPTION, FakeArm, running_arm
from .fakes.netns import PrivateNamespace
from .fakes.qemu_guests import QemuGuests, assert_gone, boot_budget_options, qemu_processes

pytestmark = pytest.mark.e2e
URN = "Debian:debian-12:12-gen2:latest"
ONE_VCPU = "Standard_B1s"  # two guests at a time on two emulating cores


@contextmanager
def _emulated(good_image: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
              namespace: PrivateNamespace | None = None) -> Iterator[FakeArm]:
    """The fake over HTTPS with its guests; in *namespace* (when given) the fake's thread binds
    its sockets and starts its threads there, the guests' QEMU too (see the module doc)."""
    ca = trustme.CA()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(tls)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    guests = QemuGuests("azure", enter=namespace.enter_mounts if namespace is not None else None)
    guests.images["debian:debian-12:12-gen2"] = good_image
    try:
        with namespace.network() if namespace is not None else nullcontext(), running_arm(tls) as fake:
            fake.guests, fake.namespace = guests, namespace
            for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "MSI_ENDPOINT",
                         "AZURE_FEDERATED_TOKEN_FILE", "AZURE_USERNAME"):
                monkeypatch.delenv(name, raising=False)
            monkeypatch.setenv("DCT_SOURCE_ADDRESS", "127.0.0.1")
            monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", SUBSCRIPTION)
            monkeypatch.setenv("DCT_AZURE_ARM_ENDPOINT", fake.url)
            monkeypatch.setenv("IDENTITY_ENDPOINT", f"{fake.url}/msi/token")
            monkeypatch.setenv("IDENTITY_HEADER", "stub")
            monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file))  # the SDK (requests)
            monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))  # the boot diagnostics blob (urllib)
            dns = DnsServer({}).start() if namespace is not None else None  # the guests' resolver
            try:
                yield fake
            finally:
                guests.close()
                if dns is not None:
                    dns.stop()
    finally:
        guests.close()


@pytest.fixture
def emulated_azure(good_image: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeArm]:
    with _emulated(good_image, monkeypatch, tmp_path) as fake:
        yield fake


@pytest.fixture
def azure_in_namespace(good_image: Path, namespace: PrivateNamespace, monkeypatch: pytest.MonkeyPatch,
                       tmp_path: Path) -> Iterator[FakeArm]:
    with _emulated(good_image, monkeypatch, tmp_path, namespace) as fake:
        yield fake


@pytest.mark.cost(220)
def test_suites_pass_on_emulated_azure_and_nothing_is_left(emulated_azure: FakeArm, tmp_path: Path) -> None:
    fake = emulated_azure
    assert fake.guests is not None
    # BVT, cloud-init (the expected datasource) and metadata (the guest's view against
    # PlatformFacts). The network suite is left out: the emulated guest network is closed.
    suites = [str(suites_dir() / name) for name in ("bvt", "cloud_init", "metadata")]
    run = run_suites(tmp_path, "--provider=azure", f"--image={URN}", f"--region={LOCATION}", *suites,
                     f"--instance-type={ONE_VCPU}",
                     *boot_budget_options(),
                     timeout=900)
    ran = {c: s for c, s in run.checks.items() if c.startswith(("bvt.", "cloud_init.", "metadata."))}
    assert {c.split(".")[0] for c in ran} == {"bvt", "cloud_init", "metadata"}, run.explain()
    bad = {c: s for c, s in ran.items() if s not in ("passed", "skipped")}
    assert not bad, f"{bad}\n{run.explain()}"
    for check in ("cloud_init.datasource_expected", "cloud_init.log_free_of_warnings",
                  "cloud_init.host_key_fingerprints_on_console", "metadata.instance_id_matches",
                  "metadata.hostname_matches", "metadata.region_and_zone_match",
                  "metadata.user_data_applied", "metadata.instance_type_matches"):
        assert ran.get(check) == "passed", f"{check}: {ran.get(check)}\n{run.explain()}"

    # the run went through ARM as a user's would, and the guest was provisioned as on Azure:
    # IMDS read, the OVF media's custom data applied, ready reported to the wireserver
    (guest,) = fake.guests.guests.values()
    assert run.props["provider"] == "azure" and run.props["instance_id"] == guest.instance_id
    assert run.props["azure_location"] == LOCATION
    server = guest.metadata
    requests = server.requests  # type: ignore[attr-defined]
    assert any(r.startswith("169.254.169.254 GET /metadata/instance?") for r in requests), requests
    assert any(r.startswith("168.63.129.16 GET /machine/?comp=goalstate") for r in requests), requests
    assert server.health == ["Ready"]  # type: ignore[attr-defined]
    assert "DataSourceAzure" in fake.guests.consoles[guest.instance_id]

    # nothing left: not in the cloud, not on this machine
    assert fake.leftovers() == {}
    assert_gone(guest, run.props["run_id"])
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("dct-azure-ovf-*"))


#: Mbit/s between two emulated VMs (each guest's user network, then the other's forward), for the
#: user's table: the shipped one sets none for Standard_B1s
FLOOR = 10


# the full matrix (two guests' boots, 116 s): CI proves the peerings and rules against the fake
# (test_provider_azure_link.py) and the measurement on QEMU's own link (test_network_perf_e2e.py)
@pytest.mark.matrix
@pytest.mark.cost(120)
def test_two_vms_measure_their_throughput_across_peered_networks(
        iperf3_cached: None, azure_in_namespace: FakeArm, namespace: PrivateNamespace,
        tmp_path: Path) -> None:
    """The peer is a second VM of the image, in a network of its own; the link is the two networks
    peered both ways with iperf3's port opened in each VM's security group to the other's private
    address (the emulated networks forward only what those open); afterwards nothing is left."""
    fake = azure_in_namespace
    assert fake.guests is not None
    table = tmp_path / "instance-types.toml"
    table.write_text(f'[azure."{ONE_VCPU}"]\nthroughput_floor_mbps = {FLOOR}\n')
    run = run_suites(tmp_path, "--provider=azure", f"--image={URN}", f"--region={LOCATION}",
                     f"--instance-type={ONE_VCPU}", f"--instance-types={table}", *boot_budget_options(),
                     select=str(suites_dir() / "network_perf"), timeout=1200, prefix=namespace.prefix())
    assert run.rc == 0, run.explain()
    assert run.checks.get("network_perf.throughput_above_floor") == "passed", run.digest()
    assert float(run.props[throughput.PROPERTY]) >= FLOOR, run.props
    # two VMs, each in a network of its own, and the traffic went from one guest to the other's
    # private address through its forward: the one port, and only after both peerings and rules
    assert len(fake.guests.guests) == 2
    opened = sorted(f for forwards in fake.guests.forwards_seen.values() for f in forwards)
    assert [port for _, port in opened] == [5201, 5201], fake.guests.forwards_seen
    assert len({address.rsplit(".", 1)[0] for address, _ in opened}) == 2  # two /24s
    for kind in ("PUT virtualnetworkpeerings", "DELETE virtualnetworkpeerings",
                 "PUT securityrules", "DELETE securityrules"):
        assert fake.calls.count(kind) == 2, (kind, fake.calls)
    assert fake.leftovers() == {}
    assert not qemu_processes(namespace.processes())

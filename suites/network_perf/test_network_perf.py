"""A second instance of the image is launched beside the first, the two are joined (a network of
their own under QEMU, the cloud's network with iperf3's port opened between them on a cloud),
and iperf3 (brought by the run, never installed) measures what the first sends to the second.
The figure is a JUnit property, so the gate's baseline comparison sees a drop."""

from __future__ import annotations

import pytest

from debian_cloud_tests import artifacts, guesttools, iperfrun, probes, throughput
from debian_cloud_tests.applicability import STARTS_THE_MACHINE
from debian_cloud_tests.errors import DCTError
from debian_cloud_tests.spec import release_from_os_release

#: a second instance is launched and the two are let reach each other (Machine.link_to): the ssh
#: provider reaches one host, never two; a platform whose machines cannot be linked says why
pytestmark = pytest.mark.applies(provider=STARTS_THE_MACHINE)


@pytest.fixture(scope="module")
def floor(dct_run, instance_type_entry) -> float:
    """The instance type's floor in Mbit/s; not applicable where the table sets none."""
    floor = instance_type_entry.throughput_floor_mbps if instance_type_entry else None
    if floor is None:
        pytest.skip(f"not applicable: the instance-type table sets no throughput floor for "
                    f"{dct_run.provider.name} {dct_run.spec.instance_type or '(no instance type)'} "
                    "(add one with --instance-types FILE)")
    return floor


@pytest.fixture(scope="module")
def tools(dct_run, facts, floor):
    """iperf3 of the guest's release and arch, unpacked on this host."""
    release = dct_run.spec.release or release_from_os_release(
        artifacts.os_release_fields(facts[probes.OS_RELEASE.name].stdout))
    if release is None:
        pytest.fail("the guest's Debian release is unknown (its os-release names none), so no "
                    "iperf3 can be fetched for it; give --release", pytrace=False)
    try:
        return guesttools.tree(release, dct_run.spec.arch.value)
    except DCTError as exc:
        pytest.fail(f"iperf3 for the guest: {exc.message}", pytrace=False)


@pytest.fixture(scope="module")
def peer(dct_run, instance, facts, floor):
    """A second machine from the same image (launched alongside the first when the plugin saw
    this suite coming), given back to the run afterwards for the uniqueness suite."""
    refused = dct_run.provider.peer_link_refused
    if refused is not None:  # before a second machine is launched
        pytest.skip(f"not applicable: {dct_run.provider.name} cannot let two instances reach each "
                    f"other: {refused}")
    if instance.host is None:
        pytest.fail(f"cannot log in to the machine: {instance.ready.login_error}", pytrace=False)
    facts.wait()  # the first machine's probes are done before the guests are loaded
    second = dct_run.fleet.take_spare() or dct_run.fleet.launch(peer_network=True)
    if second.host is None:
        pytest.fail(f"cannot log in to the second machine: {second.ready.login_error}",
                    pytrace=False)
    yield second
    if dct_run.fleet is not None:
        dct_run.fleet.give_back(second)


@pytest.fixture(scope="module")
def link(instance, peer):
    """The two machines able to reach each other on iperf3's port, taken away after the check."""
    try:
        made = instance.machine.link_to(peer.machine, iperfrun.PORT)
    except NotImplementedError as exc:
        pytest.skip(f"not applicable: the platform cannot let two instances reach each other "
                    f"here: {exc}")
    except DCTError as exc:
        pytest.fail(f"the two instances could not be linked: {exc.message}", pytrace=False)
    yield made
    made.close()


def test_throughput_above_floor(floor, tools, dct_run, instance, peer, link, request,
                                record_testsuite_property) -> None:
    """TCP throughput from one instance to another of the same image meets the instance type's
    floor (iperf3, the instance-type table's throughput_floor_mbps)."""
    clients = (instance.host.backend.client, peer.host.backend.client)
    try:
        with iperfrun.sides(clients, link.ends, tools) as (sender, receiver):
            report = iperfrun.measure(sender, receiver)
    except iperfrun.GuestError as exc:
        pytest.fail(f"the throughput could not be measured: {exc}", pytrace=False)
    try:
        measured = throughput.parse_report(report)
    except throughput.ReportError as exc:
        pytest.fail(f"the throughput could not be measured: {exc}", pytrace=False)
    request.node.user_properties.append((throughput.PROPERTY, measured.mbps))
    record_testsuite_property(throughput.PROPERTY, measured.mbps)
    failure = throughput.below_floor(measured.mbps, floor, dct_run.provider.name,
                                     dct_run.spec.instance_type)
    if failure:
        pytest.fail(failure, pytrace=False)

"""End to end on an emulated EC2: the plugin runs every suite with ``--provider=aws`` against moto,
whose instances are real QEMU guests booted from the test image (see tests/fakes/aws_qemu.py).

The guests configure themselves through cloud-init's Ec2 datasource from an emulated IMDSv2, the
provider reaches each on its "public IP" (a 127.x.y.z address) port 22 with the host key read
from get_console_output, and afterwards nothing is left in EC2 or on this machine.  In the full
matrix the reboot suite's hard reboot also goes through RebootInstances (which resets the guest)
and the uniqueness suite's second instance is a second guest.

The guests get the network a default VPC subnet gives (a DHCP'd default route and a nameserver),
so all of it runs in a network and mount namespace of the test's own (tests/fakes/netns.py): only
loopback exists there and its resolv.conf names a DNS server of the test's, which answers every
name NXDOMAIN.  moto, the metadata services, the DNS server, QEMU and the plugin run live in it;
nothing can leave it.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from debian_cloud_tests import throughput
from debian_cloud_tests.datasources.dns import DnsServer
from debian_cloud_tests.datasources.ec2 import ImdsServer
from debian_cloud_tests.plugin import suites_dir

from .conftest import run_suites
from .fakes.aws_qemu import QemuMachines
from .fakes.aws_world import make_world
from .fakes.moto_ec2 import CheckIp, leftovers, running_moto
from .fakes.netns import PrivateNamespace
from .fakes.qemu_guests import Guest, assert_gone, boot_budget_options, qemu_processes

if TYPE_CHECKING:
    from .fakes.aws_world import AwsWorld

pytestmark = pytest.mark.e2e

#: a one-vCPU type: two guests at a time on two emulating cores (see conftest.TEST_SHAPE)
ONE_VCPU = "t2.small"
SUITES = ("bvt", "cloud_init", "metadata", "config", "network", "reboot", "uniqueness", "gpu",
          "network_perf", "upgrade")
#: The checks that cannot apply on this emulated EC2 (or to this image on any EC2), and why: the
#: start of their skip message.  Any other skip fails the test.
UPGRADE_CHECKS = ("full_upgrade_succeeds", "comes_back_after_upgrade", "boots_the_new_kernel",
                  "no_failed_units_after_upgrade", "host_keys_kept_after_upgrade",
                  "machine_id_kept_after_upgrade", "cloud_init_per_instance_not_rerun",
                  "bvt_passes_again_after_upgrade")
NOT_APPLICABLE = {
    # offline: the namespace's resolver knows no mirror (on EC2 the mirrors answer)
    "config.apt_update_works": "not applicable: the guest cannot reach its mirrors from here",
    "config.no_pending_security_updates":
        "not applicable: the guest cannot reach its -security mirror from here",
    # EC2 waits for no report from the guest (Azure's wireserver does)
    "metadata.provisioning_reported_ready": "not applicable: aws waits for no provisioning report",
    # a default VPC subnet has no IPv6 range, and the provider asks for no IPv6 address
    "network.ipv6_when_offered": "not applicable: aws offers no IPv6 to this instance",
    # the AMI is registered with BootMode legacy-bios, as Debian's amd64 AMIs are
    "bvt.booted_in_uefi_mode": "not applicable: firmware bios not in ['uefi']",
    "bvt.esp_mounted": "not applicable: firmware bios not in ['uefi']",
    # the test image is bookworm
    "config.apt_sources_deb822": "not applicable: release bookworm not in",
    # bookworm's cloud-init (22.4) keeps no recoverable errors
    "cloud_init.no_recoverable_errors": "not applicable: this cloud-init (before 23.4)",
    # the test image has no cron, and bookworm's /tmp is a directory of the root file system
    "config.file_mode[/etc/crontab]": "not applicable: the image has no /etc/crontab",
    "config.mount_options[/tmp]": "not applicable: /tmp is not a mount of its own",
    # asked for by options the run does not give (Secure Boot, an upgrade), or a promise of the
    # instance-type table that t2.small does not make
    "bvt.secure_boot_enabled": "not applicable: firmware bios not in",
    "bvt.kernel_locked_down": "not applicable: firmware bios not in",
    "gpu.devices_present": "not applicable: the instance-type table promises no GPU",
    "gpu.driver_bound": "not applicable: the instance-type table promises no GPU",
    **{f"upgrade.{check}": "not applicable: no --upgrade given" for check in UPGRADE_CHECKS},
}


@dataclass
class EmulatedEc2:
    world: AwsWorld
    machines: QemuMachines
    dns: DnsServer
    namespace: PrivateNamespace



@pytest.fixture
def emulated_ec2(good_image: Path, namespace: PrivateNamespace, monkeypatch: pytest.MonkeyPatch,
                 tmp_path: Path) -> Iterator[EmulatedEc2]:
    machines = QemuMachines(namespace)
    try:
        # this thread binds the servers' sockets and starts their threads in the namespace (and
        # stays there for the test): moto's request threads, which start the guests and their
        # metadata services, are in it too
        with namespace.network(), running_moto() as moto:
            checkip, dns = CheckIp(), DnsServer({}).start()
            try:
                world = make_world(moto, monkeypatch, tmp_path, machines, checkip)
                machines.images[world.ami] = good_image
                yield EmulatedEc2(world, machines, dns, namespace)
            finally:
                machines.close()
                dns.stop()
                checkip.shutdown()
                checkip.server_close()
    finally:
        machines.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


#: the suites that reboot the instance (RebootInstances) or launch a second one
TWO_INSTANCE_SUITES = ("reboot", "uniqueness", "network_perf")
#: Mbit/s between two emulated instances (each guest's user network, then the other's forward:
#: 60 to 300 Mbit/s measured here), for the user's table: the shipped one sets none for t2.small
FLOOR = 10


def _instance_types(tmp_path: Path) -> str:
    path = tmp_path / "instance-types.toml"
    path.write_text(f'[aws."{ONE_VCPU}"]\nthroughput_floor_mbps = {FLOOR}\n')
    return f"--instance-types={path}"


# CI runs every suite but those two on one instance; the full matrix adds them (the reboots and
# the second instance of the qemu provider are proven in CI by the demo on a fresh Debian)
@pytest.mark.parametrize("suites", [pytest.param("one-instance", marks=pytest.mark.cost(200)),
                                    pytest.param("every", marks=[pytest.mark.cost(400),
                                                                 pytest.mark.matrix])])
def test_every_suite_passes_on_emulated_ec2_and_nothing_is_left(suites: str, iperf3_cached: None,
                                                                emulated_ec2: EmulatedEc2,
                                                                tmp_path: Path) -> None:
    world, machines = emulated_ec2.world, emulated_ec2.machines
    every = suites == "every"
    # Every suite, none selected. The AMI is the cloud-kernel test image: Debian's ec2 images run
    # that kernel too. EC2's boot budget assumes its hardware virtualisation: where the guests
    # are emulated (no working KVM here) they get the budget of an emulated machine, as the qemu
    # provider gives its own, from the command line as a user on slow hardware would.
    budget = boot_budget_options()
    left_out = ((_instance_types(tmp_path),) if every
                else tuple(f"--ignore={suites_dir() / s}" for s in TWO_INSTANCE_SUITES))
    run = run_suites(tmp_path, "--provider=aws", f"--image={world.ami}", f"--region={world.region}",
                     "--image-type=ec2", f"--instance-type={ONE_VCPU}", *budget, *left_out,
                     timeout=1800, prefix=emulated_ec2.namespace.prefix())
    expected_suites = set(SUITES) if every else set(SUITES) - set(TWO_INSTANCE_SUITES)
    assert {c.split(".")[0] for c in run.checks} == expected_suites, f"{sorted(run.checks)}\n{run.explain()}"
    bad = {c: s for c, s in run.checks.items() if s not in ("passed", "skipped")}
    assert not bad, f"{bad}\n{run.messages}\n{run.explain()}"
    skipped = {c: run.messages.get(c, "") for c, s in run.checks.items() if s == "skipped"}
    unexplained = {c: m for c, m in skipped.items()
                   if c not in NOT_APPLICABLE or not m.startswith(NOT_APPLICABLE[c])}
    assert not unexplained, f"skipped for no reason of the platform's: {unexplained}"
    assert run.rc == 0, run.explain()
    for check in ("bvt.boot_within_budget", "cloud_init.datasource_expected",
                  "cloud_init.log_free_of_warnings", "cloud_init.host_key_fingerprints_on_console",
                  "metadata.instance_id_matches", "metadata.hostname_matches",
                  "metadata.region_and_zone_match",
                  "metadata.instance_type_matches", "metadata.user_data_applied",
                  "metadata.vcpus_match", "metadata.memory_matches",
                  "network.default_route", "network.dhcp_lease", "network.nameserver_configured",
                  "network.dns_resolves", "network.mtu_matches_platform",
                  "network.network_rendered_by_cloud_init",
                  *((f"reboot.{c}[{kind}]" for kind in ("soft", "hard")
                     for c in ("comes_back", "host_keys_kept", "hostname_kept",
                               "no_failed_units_after_reboot")) if every else ()),
                  *(("uniqueness.host_keys_unique", "uniqueness.machine_id_unique",
                     "uniqueness.instance_id_unique", "network_perf.throughput_above_floor")
                    if every else ())):
        assert run.checks.get(check) == "passed", f"{check}: {run.checks.get(check)}\n{run.explain()}"

    # the run went through EC2 as a user's would, on one instance or two, each a QEMU guest of its own
    first_id = run.props["instance_id"]
    assert set(machines.guests) >= {first_id} and len(machines.guests) == (2 if every else 1), machines.guests
    guests = [machines.guests[first_id], *(g for i, g in machines.guests.items() if i != first_id)]
    assert len({g.address for g in guests}) == len(guests)
    assert all(re.fullmatch(r"127\.\d+\.\d+\.\d+", g.address) for g in guests)
    assert None not in {g.machine.pid for g in guests}
    assert len({g.machine.pid for g in guests}) == len(guests)
    assert run.props["provider"] == "aws" and run.props["aws_region"] == world.region
    assert run.props["provider_retries"] == "0"  # recorded even when the cloud needed none
    for guest in guests:  # each configured itself from its own metadata service
        server = guest.metadata
        assert isinstance(server, ImdsServer) and server.data.instance_id == guest.instance_id
        assert any(r.startswith("PUT /latest/api/token") for r in server.requests)
        assert "Datasource DataSourceEc2Local" in machines.consoles[guest.instance_id]
    # the hard reboot went provider -> RebootInstances -> moto -> a reset of the first guest, once
    # (the soft one is the guest's own: no platform reset was needed)
    assert world.hooks.calls.count("reboot_instances") == (1 if every else 0)
    assert machines.resets == ([first_id] if every else [])
    assert "platform_reset" not in run.props
    # the guests' names were looked up through the emulated VPC's nameserver
    assert ("deb.debian.org", 1) in emulated_ec2.dns.questions

    # nothing left: not in EC2, not on this machine
    assert leftovers(world.moto) == {}
    assert not qemu_processes(emulated_ec2.namespace.processes())
    for guest in guests:
        _gone(guest, run.props["run_id"])


# the full matrix (two guests' boots, 110 s): CI proves the rules against moto
# (test_provider_aws.py) and the measurement on QEMU's own link (test_network_perf_e2e.py)
@pytest.mark.matrix
@pytest.mark.cost(110)
def test_two_instances_measure_their_throughput_across_the_vpc(iperf3_cached: None,
                                                                 emulated_ec2: EmulatedEc2,
                                                                 tmp_path: Path) -> None:
    """The peer is a second instance of the AMI; the link is the VPC with iperf3's port opened
    in each instance's group to the other's private address (the emulated VPC forwards only
    what a rule opens); afterwards the rules and everything else are gone."""
    world, machines = emulated_ec2.world, emulated_ec2.machines
    run = run_suites(tmp_path, "--provider=aws", f"--image={world.ami}", f"--region={world.region}",
                     "--image-type=ec2", f"--instance-type={ONE_VCPU}", *boot_budget_options(),
                     _instance_types(tmp_path), select=str(suites_dir() / "network_perf"),
                     timeout=1200, prefix=emulated_ec2.namespace.prefix())
    assert run.rc == 0, run.explain()
    assert run.checks.get("network_perf.throughput_above_floor") == "passed", run.digest()
    assert float(run.props[throughput.PROPERTY]) >= FLOOR, run.props
    # the traffic went from one guest to the other's private address through its forward
    assert len(machines.guests) == 2
    opened = [f for forwards in machines.forwards_seen.values() for f in forwards]
    assert sorted(port for _, port in opened) == [5201, 5201], machines.forwards_seen
    assert world.hooks.calls.count("authorize_security_group_ingress") >= 2 + 2
    assert world.hooks.calls.count("revoke_security_group_ingress") == 2
    assert leftovers(world.moto) == {}
    assert not qemu_processes(emulated_ec2.namespace.processes())


def _gone(guest: Guest, run_id: str) -> None:
    assert_gone(guest, run_id)
    pid = guest.machine.pid
    assert pid is None or not _alive(pid)
    with pytest.raises(OSError):  # and nothing listens any more on the guest's address
        socket.create_connection((guest.address, 22), timeout=2).close()

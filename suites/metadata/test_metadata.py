"""The guest's view (cloud-init instance data, the kernel) against the provider's PlatformFacts."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from debian_cloud_tests.applicability import STARTS_THE_MACHINE
from debian_cloud_tests.facts import Probe
from debian_cloud_tests.probes import INSTANCE_DATA
from debian_cloud_tests.seed import MARKER_PATH

PROBES = [
    Probe("hostname", "hostname"),
    INSTANCE_DATA,
    Probe("dpkg_arch", "dpkg --print-architecture"),
    Probe("nproc", "getconf _NPROCESSORS_ONLN"),
    Probe("memtotal_kib", "awk '/^MemTotal/ {print $2}' /proc/meminfo"),
    Probe("launch_marker", f"cat {MARKER_PATH}"),
    # GCE's metadata server names the machine type, which cloud-init's GCE datasource does not
    # keep.  Asked only where both SMBIOS and cloud-init say the platform is GCE, by name as
    # cloud-init does (the metadata server answers nothing else that is private).
    Probe("gce_machine_type",
          "read -r p 2>/dev/null </sys/class/dmi/id/product_name; case $p in "
          "'Google Compute Engine'|Google) ;; *) exit 0 ;; esac; "
          "grep -qs '\"cloud_name\": \"gce\"' /run/cloud-init/instance-data.json || exit 0; "
          "exec python3 -c 'import urllib.request as u; print(u.urlopen(u.Request("
          "\"http://metadata.google.internal/computeMetadata/v1/instance/machine-type\", "
          "headers={\"Metadata-Flavor\": \"Google\"}), timeout=10).read().decode())'"),
]


def _instance_document(facts) -> dict:
    """instance-data.json whole: ``v1`` (cloud-init's standard keys) and ``ds`` (the datasource's)."""
    out = facts["ci_instance_data"]
    if not out.ok:
        pytest.fail(f"cannot read instance-data.json: {out.why()}", pytrace=False)
    return json.loads(out.stdout)


def _instance_data(facts) -> dict:
    return _instance_document(facts).get("v1", {})


def test_hostname_matches(facts, machine) -> None:
    """The guest's hostname is the one the platform assigned."""
    if not machine.facts.hostname:
        pytest.skip(f"not applicable: {machine.facts.provider} does not know the hostname it set")
    actual = facts["hostname"].stdout.strip()
    expected = machine.facts.hostname.split(".")[0]
    assert actual == expected, (f"hostname is {actual!r}, the platform set {expected!r}: is "
                                "preserve_hostname set, or /etc/hostname baked in?")


def test_instance_id_matches(facts, machine) -> None:
    """cloud-init's instance id is the platform's."""
    if not machine.facts.instance_id:
        pytest.skip(f"not applicable: {machine.facts.provider} does not know the instance id")
    seen = _instance_data(facts).get("instance_id")
    assert _same_id(seen, machine.facts.instance_id), (
        f"cloud-init's instance id is {seen!r}, the platform's {machine.facts.instance_id!r}: the "
        "guest reads another instance's metadata, or state from the image build survived")


def _same_id(seen: object, platform: str) -> bool:
    """Equal, or the same UUID: Azure's vmId is cloud-init's instance id read from SMBIOS, whose
    first three fields a kernel may show in the other byte order (cloud-init allows for it too)."""
    if not isinstance(seen, str):
        return False
    if seen == platform:
        return True
    try:
        a, b = uuid.UUID(seen), uuid.UUID(platform)
    except ValueError:
        return False
    return a == b or a.bytes == b.bytes_le


def test_arch_matches(facts, machine) -> None:
    """The guest's dpkg architecture is the arch the platform runs."""
    guest = facts["dpkg_arch"].stdout.strip()
    assert guest == machine.facts.arch.value, (
        f"the guest's dpkg architecture is {guest or 'unknown'}, the platform runs "
        f"{machine.facts.arch.value}: the image was built for another architecture")


def test_vcpus_match(facts, machine) -> None:
    """The guest uses every vCPU the instance type provides (no maxcpus/nr_cpus limit)."""
    expected = machine.facts.extra.get("vcpus")
    if expected is None:
        pytest.skip("not applicable: the platform does not say how many vCPUs it gave")
    actual = facts["nproc"].stdout.strip()
    assert actual == expected, f"guest sees {actual} CPUs, the instance has {expected}; check mem=/maxcpus="


def test_memory_matches(facts, machine) -> None:
    """The guest sees (nearly) all the memory the instance type provides (no mem= limit)."""
    expected = machine.facts.extra.get("memory_mib")
    if expected is None:
        pytest.skip("not applicable: the platform does not say how much memory it gave")
    actual_mib = int(facts["memtotal_kib"].stdout.strip()) // 1024
    # The kernel reserves some memory for itself and firmware; 85% is far above any mem= limit.
    assert actual_mib >= 0.85 * int(expected), (
        f"guest sees {actual_mib} MiB of {expected} MiB; a mem= on the kernel command line?")


@pytest.mark.applies(provider=STARTS_THE_MACHINE)
def test_user_data_applied(facts, machine) -> None:
    """The user-data given at launch was applied (its write_files marker is there)."""
    if not machine.facts.instance_id:
        pytest.skip(f"not applicable: {machine.facts.provider} launched nothing, so no user-data "
                    "of ours to look for")
    out = facts["launch_marker"]
    assert out.ok and out.stdout.strip() == machine.facts.instance_id, (
        "the launch user-data was not applied: cloud-init's write_files did not run "
        f"({out.why() if not out.ok else 'wrong content'})")


def test_region_and_zone_match(facts, machine) -> None:
    """Region and availability zone in instance data are the platform's (where it has them)."""
    if not machine.facts.region and not machine.facts.zone:
        pytest.skip(f"not applicable: {machine.facts.provider} has no regions or zones")
    data = _instance_data(facts)
    wrong = [f"{what} {data.get(key)!r}, launched in {want!r}"
             for what, key, want in (("region", "region", machine.facts.region),
                                     ("zone", "availability_zone", machine.facts.zone))
             if want and data.get(key) != want]
    assert not wrong, ("cloud-init's instance data says " + "; ".join(wrong) +
                       ": the guest reads another platform's metadata, or the datasource is wrong")


def test_provisioning_reported_ready(machine) -> None:
    """The guest told its platform it is provisioned, where the platform waits for that (Azure
    fails a VM's creation whose guest never reports ready to the wireserver)."""
    reports = machine.provisioning_reports()
    if reports is None:
        pytest.skip(f"not applicable: {machine.facts.provider} waits for no provisioning report, "
                    "or does not show it")
    assert "Ready" in reports, (
        f"the guest never reported ready to its platform (reports: {', '.join(reports) or 'none'}): "
        "on Azure its creation fails with OSProvisioningTimedOut; check that cloud-init's Azure "
        "datasource ran (cloud_init.datasource_expected)")


def _gce_machine_type(facts) -> str:
    """The machine type GCE's metadata server names ("projects/N/machineTypes/T"), or ""."""
    out = facts["gce_machine_type"]
    if not out.ok:
        pytest.fail(f"cannot read the machine type from GCE's metadata server: {out.why()}",
                    pytrace=False)
    return out.stdout.strip().rsplit("/", 1)[-1]


def test_instance_type_matches(facts, machine) -> None:
    """The instance type the guest sees is the one launched (where the platform exposes it)."""
    document = _instance_document(facts)
    data, ds = document.get("v1", {}), document.get("ds") or {}
    meta = ds.get("meta-data") or ds.get("meta_data") or {}
    # OpenStack: Nova's EC2-compatible metadata names the flavor
    seen = data.get("instance_type") or meta.get("instance-type") or \
        (ds.get("ec2_metadata") or {}).get("instance-type") or \
        ((meta.get("imds") or {}).get("compute") or {}).get("vmSize") or \
        _gce_machine_type(facts)  # Azure: IMDS's VM size; GCE: its metadata server's
    if not seen:
        pytest.skip("not applicable: the platform exposes no instance type to the guest")
    if not machine.facts.instance_type:
        pytest.skip(f"not applicable: {machine.facts.provider} was not told the instance type "
                    "(--instance-type)")
    # Azure's sizes are case-insensitive names (Standard_B2s, standard_b2s)
    assert re.sub(r"\s", "", seen).lower() == machine.facts.instance_type.lower(), (
        f"the guest sees instance type {seen!r}, launched as {machine.facts.instance_type!r}: "
        "its metadata is not this instance's")

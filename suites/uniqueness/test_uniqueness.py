"""A second instance of the same image is launched; nothing that identifies an instance may be
shared between the two."""

from __future__ import annotations

import json

import pytest

from debian_cloud_tests.facts import Probe, gather
from debian_cloud_tests.plugin import NoLogin

IDENTITY = [
    Probe("machine_id", "cat /etc/machine-id"),
    Probe("host_key_fingerprints", "for f in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -lf \"$f\"; "
          "done | awk '{print $2}'"),
    Probe("instance_id", "cat /run/cloud-init/instance-data.json"),
]
PROBES = IDENTITY


@pytest.fixture(scope="module")
def twin(dct_run, instance, facts):
    """A second machine from the same image, launched for this comparison (alongside the first
    when the plugin saw this suite coming) and destroyed with the run."""
    if dct_run.fleet is None:
        pytest.fail("no fleet to launch a second machine in", pytrace=False)
    if instance.host is None:  # the image refuses logins: the first machine cannot be compared
        return NoLogin(str(instance.ready.login_error)), None
    # a machine that did not come up raises: an error of the run, not a failed check
    second = dct_run.fleet.take_spare() or dct_run.fleet.launch()
    if second.host is None:
        pytest.fail(f"cannot log in to the second machine: {second.ready.login_error}", pytrace=False)
    return gather(second.host.backend.client, IDENTITY), second


def test_host_keys_unique(facts, twin) -> None:
    """The two instances have no SSH host key in common (keys are made at first boot)."""
    twin_facts, _ = twin
    shared = set(facts["host_key_fingerprints"].lines()) & set(twin_facts["host_key_fingerprints"].lines())
    assert not shared, f"both instances have host keys {sorted(shared)}: keys are baked into the image"


def test_machine_id_unique(facts, twin) -> None:
    """The two instances have different machine-ids."""
    twin_facts, _ = twin
    a, b = facts["machine_id"].stdout.strip(), twin_facts["machine_id"].stdout.strip()
    assert a and a != b, f"both instances have machine-id {a!r}: ship an empty /etc/machine-id"


def _cloud_init_instance_id(out) -> str:
    try:
        return str(json.loads(out.stdout).get("v1", {}).get("instance_id") or "")
    except ValueError:
        return ""


def test_instance_id_unique(facts, twin) -> None:
    """cloud-init sees a different instance id on each instance (the platform's, not one baked
    into the image, which would make every instance look like the same one)."""
    twin_facts, _ = twin
    a = _cloud_init_instance_id(facts["instance_id"])
    b = _cloud_init_instance_id(twin_facts["instance_id"])
    assert a, f"cloud-init names no instance id: {facts['instance_id'].why()}"
    assert a != b, (f"both instances are {a!r} to cloud-init: a seed or state from the build "
                    "outranks the platform's metadata; remove /var/lib/cloud/seed from the image")

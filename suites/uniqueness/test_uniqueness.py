"""A second instance of the same image is launched; nothing that identifies an instance may be
shared between the two."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json

import pytest

from debian_cloud_tests.applicability import STARTS_THE_MACHINE
from debian_cloud_tests.facts import Probe, gather
from debian_cloud_tests.fixtures import NoLogin
from debian_cloud_tests.probes import INSTANCE_DATA

IDENTITY = [
    Probe("machine_id", "cat /etc/machine-id"),
    # the public keys themselves: fingerprints are computed here (an ssh-keygen per key costs
    # the guest a tenth of a second under TCG, a cat of all of them a few hundredths)
    Probe("host_public_keys", "cat /etc/ssh/ssh_host_*_key.pub"),
    INSTANCE_DATA,
]
PROBES = IDENTITY

#: a second instance of the image is launched: the ssh provider reaches one host, never two
pytestmark = pytest.mark.applies(provider=STARTS_THE_MACHINE)


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
    shared = _fingerprints(facts["host_public_keys"]) & _fingerprints(twin_facts["host_public_keys"])
    assert not shared, f"both instances have host keys {sorted(shared)}: keys are baked into the image"


def _fingerprints(out) -> set[str]:
    """The SHA256 fingerprint (as ssh-keygen -l prints it) of each public key in *out*."""
    if not out.ok or not out.lines():
        pytest.fail(f"cannot read the host's public keys: {out.why()}", pytrace=False)
    prints = set()
    for line in out.lines():
        try:
            blob = base64.b64decode(line.split()[1], validate=True)
        except (IndexError, binascii.Error):
            pytest.fail(f"not an SSH public key line: {line[:80]!r}", pytrace=False)
        prints.add("SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("="))
    return prints


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
    a = _cloud_init_instance_id(facts[INSTANCE_DATA.name])
    b = _cloud_init_instance_id(twin_facts[INSTANCE_DATA.name])
    assert a, f"cloud-init names no instance id: {facts['instance_id'].why()}"
    assert a != b, (f"both instances are {a!r} to cloud-init: a seed or state from the build "
                    "outranks the platform's metadata; remove /var/lib/cloud/seed from the image")

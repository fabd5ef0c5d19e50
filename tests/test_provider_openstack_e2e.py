"""End to end on an emulated OpenStack: the plugin runs the suites with ``--provider=openstack``
through the real openstacksdk against the fake cloud, whose server is a real QEMU guest booted
from the test image (see tests/fakes/openstack_cloud.py).

The guest configures itself through cloud-init's OpenStack datasource from an emulated Nova
metadata service, the provider reaches it on its fixed address port 22 with the host key read
from the console log, and afterwards nothing is left in the cloud or on this machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from debian_cloud_tests.plugin import suites_dir

from .conftest import run_suites
from .fakes.openstack_cloud import FakeOpenStack, running_openstack
from .fakes.qemu_guests import QemuGuests, assert_gone, boot_budget_options

pytestmark = pytest.mark.e2e
IMAGE = "debian-12-genericcloud-amd64"


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

"""End to end on an emulated EC2: the plugin runs the suites with ``--provider=aws`` against moto,
whose instance is a real QEMU guest booted from the test image (see tests/fakes/aws_qemu.py).

The guest configures itself through cloud-init's Ec2 datasource from an emulated IMDSv2, the
provider reaches it on its "public IP" (a 127.x.y.z address) port 22 with the host key read
from get_console_output, and afterwards nothing is left in EC2 or on this machine.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from debian_cloud_tests.plugin import suites_dir

from .conftest import run_suites
from .fakes.aws_qemu import QemuMachines
from .fakes.aws_world import make_world
from .fakes.moto_ec2 import CheckIp, leftovers

if TYPE_CHECKING:
    from .fakes.aws_world import AwsWorld
    from .fakes.moto_ec2 import MotoEc2

pytestmark = pytest.mark.e2e
pytest_plugins = ["tests.fakes.aws_env"]


@pytest.fixture
def emulated_ec2(moto_server: MotoEc2, good_image: Path, monkeypatch: pytest.MonkeyPatch,
                 tmp_path: Path) -> Iterator[AwsWorld]:
    machines, checkip = QemuMachines(), CheckIp()
    try:
        world = make_world(moto_server, monkeypatch, tmp_path, machines, checkip)
        machines.images[world.ami] = good_image
        yield world
    finally:
        machines.close()
        checkip.shutdown()
        checkip.server_close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_suites_pass_on_emulated_ec2_and_nothing_is_left(emulated_ec2: AwsWorld, tmp_path: Path) -> None:
    world = emulated_ec2
    # BVT, and metadata (the guest's view against PlatformFacts: it proves the Ec2 datasource).
    # The network suite is left out: the emulated guest network is deliberately closed.
    suites = [str(suites_dir() / name) for name in ("bvt", "metadata")]
    # The AMI is the cloud-kernel test image: Debian's ec2 images run that kernel too.
    run = run_suites(tmp_path, "--provider=aws", f"--image={world.ami}", f"--region={world.region}",
                     "--image-type=ec2", *suites, timeout=900)
    bvt = {c: s for c, s in run.checks.items() if c.startswith("bvt.")}
    assert bvt, f"no BVT check ran\n{run.explain()}"
    assert all(s == "passed" for s in bvt.values()), f"{bvt}\n{run.explain()}"
    metadata = {c: s for c, s in run.checks.items() if c.startswith("metadata.")}
    assert metadata and all(s in ("passed", "skipped") for s in metadata.values()), metadata
    for check in ("metadata.instance_id_matches", "metadata.region_and_zone_match",
                  "metadata.instance_type_matches", "metadata.user_data_applied"):
        assert metadata.get(check) == "passed", f"{check}: {metadata.get(check)}\n{run.explain()}"

    # the run went through EC2 as a user's would
    machines: QemuMachines = world.machines
    (guest,) = machines.guests.values()
    assert run.props["provider"] == "aws" and run.props["instance_id"] == guest.instance_id
    assert run.props["aws_region"] == world.region
    assert run.props["provider_retries"] == "0"  # recorded even when the cloud needed none
    assert any(r.startswith("PUT /latest/api/token") for r in guest.metadata.requests)
    assert "Datasource DataSourceEc2Local" in machines.consoles[guest.instance_id]

    # nothing left: not in EC2, not on this machine
    assert leftovers(world.moto) == {}
    assert guest.stopped and not guest.machine.is_alive()
    assert not guest.run_dir.path.exists()
    pid = guest.machine._proc.pid if guest.machine._proc else None
    assert pid is None or not _alive(pid)
    run_id = run.props["run_id"]
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob(f"dct-run-{run_id}-*"))

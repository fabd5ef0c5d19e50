"""End to end: `publish --cloud aws` on the emulated EC2 (moto whose instances are QEMU guests, see
test_provider_aws_e2e): the image is uploaded as an EBS snapshot, registered privately, every
suite runs on the registered AMI, whose instance boots the very bytes uploaded, and the gate's
publish releases it; nothing else is left."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from debian_cloud_tests.providers.aws.publish import SSM_PREFIX

from debian_cloud_tests.plugin import suites_dir
from debian_cloud_tests.publication import state

from .conftest import parse_junit
from .fakes.moto_ec2 import leftovers
from .fakes.moto_images import Images
from .fakes.qemu_guests import boot_budget_options
from .test_provider_aws_e2e import ONE_VCPU, TWO_INSTANCE_SUITES, EmulatedEc2, emulated_ec2  # noqa: F401

pytestmark = pytest.mark.e2e

#: the e2e runs one instance per copy: the suites that need a second instance or reboots, which
#: the aws e2e proves in the full matrix, are left out, and the release policy accepts that
POLICY = f"""\
[[accept_filter]]
provider = "aws"
suites = {json.dumps(list(TWO_INSTANCE_SUITES))}
reason = "one instance per registered copy in this test; the aws e2e proves those suites"
"""


def _sha256(path: Path, length: int | None = None) -> str:
    digest, left = hashlib.sha256(), length
    with path.open("rb") as f:
        while chunk := f.read(1 << 20 if left is None else min(1 << 20, left)):
            digest.update(chunk)
            if left is not None:
                left -= len(chunk)
    return digest.hexdigest()


# in CI: the registration on moto (test_publication_aws) and an AMI's boot on emulated EC2
# (test_provider_aws_e2e)
@pytest.mark.matrix
@pytest.mark.cost(260)
def test_published_ami_boots_the_uploaded_bytes_passes_and_is_released(
        emulated_ec2: EmulatedEc2, good_image: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    world, machines = emulated_ec2.world, emulated_ec2.machines
    images = Images(monkeypatch)
    machines.disk_of = lambda backend, ami: images.disk_of(backend, ami, tmp_path / f"{ami}.disk")
    image = tmp_path / "debian-12-ec2-amd64.qcow2"
    image.symlink_to(good_image)
    manifest = image.with_suffix(".json")
    manifest.write_text(json.dumps({"name": "debian-12-ec2-amd64", "release": "bookworm",
                                    "vendor": "ec2", "arch": "amd64", "firmware": "bios"}))
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    out = tmp_path / "out"
    out.mkdir()

    pytest_args = [*boot_budget_options(), f"--instance-type={ONE_VCPU}",
                   *(f"--ignore={suites_dir() / s}" for s in TWO_INSTANCE_SUITES)]
    proc = subprocess.run(
        [*emulated_ec2.namespace.prefix(), sys.executable, "-m", "debian_cloud_tests.pipeline.cli",
         "publish", str(image), "--cloud=aws", f"--region={world.region}", f"--output={out}",
         f"--policy={policy}", *(f"--pytest-arg={a}" for a in pytest_args)],
        capture_output=True, text=True, timeout=1800, cwd=tmp_path)
    pub = json.loads(state.default_path(image, "aws").read_text())
    assert proc.returncode == 0, f"{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}\n{pub}"
    ami = pub["copies"][world.region]
    assert pub["outcome"] == "released"

    # the registered bytes are the image's raw form, and they are what the guest booted
    raw = tmp_path / "image.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(good_image), str(raw)], check=True)
    assert pub["uploaded_sha256"] == _sha256(raw)
    (instance,) = machines.booted_from
    assert _sha256(machines.booted_from[instance], raw.stat().st_size) == pub["uploaded_sha256"]

    # the run on the copy says which copy and which bytes it tested
    checks, _, props = parse_junit(Path(pub["tested"][world.region]))
    assert props["registered_image"] == ami and props["registered_region"] == world.region
    assert props["image_sha256"] == pub["uploaded_sha256"]
    assert checks["cloud_init.datasource_expected"] == "passed", checks

    # released: public, the "latest" pointer set; the run itself left nothing
    ec2 = world.moto.client(world.region)
    (found,) = ec2.describe_images(ImageIds=[ami])["Images"]
    assert found["Public"] is True
    import boto3

    ssm = boto3.client("ssm", region_name=world.region, endpoint_url=world.moto.url)
    assert ssm.get_parameter(Name=f"{SSM_PREFIX}/12/ec2/latest/amd64")["Parameter"]["Value"] == ami
    assert leftovers(world.moto) == {}
    assert not list(tmp_path.glob(".*.publish.raw"))

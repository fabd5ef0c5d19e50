"""`debian-cloud-tests images` and `--image debian-13`: Debian's images as each cloud offers them
(aws: Debian's account and the public "latest" SSM parameters, against moto; gce: the debian-cloud
project's families, against the compute fake), newest first, and aliases resolved to the image
the cloud's pointer names, recorded in the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from debian_cloud_tests.providers.aws import AwsProvider
from debian_cloud_tests.providers.aws.images import DEBIAN_ACCOUNT
from debian_cloud_tests.providers.azure.images import AzureImages
from debian_cloud_tests.providers.openstack import OpenStackProvider
from debian_cloud_tests.providers.openstack.images import OpenStackImages

from debian_cloud_tests.locator.errors import AliasNotFoundError
from debian_cloud_tests.locator.model import Query, newest_first
from debian_cloud_tests.spec import Arch, Firmware, LaunchSpec

from .fakes.aws_world import AwsWorld
from .fakes.azure_arm import LOCATION, FakeArm
from .fakes.gce_compute import ZONE, FakeGce
from .fakes.openstack_cloud import FakeOpenStack
from .test_provider_azure import arm  # noqa: F401  (the fixture)
from .test_provider_azure import provider as azure_provider
from .test_provider_gce import gce, gce_env, provider  # noqa: F401  (gce: the fixture)
from .test_provider_openstack import ostack  # noqa: F401  (the fixture)

pytest_plugins = ["tests.fakes.aws_env"]

#: (name, arch, created): Debian's AMIs in the emulated region, not in date order
DEBIAN_AMIS = [("debian-12-amd64-20260610-1800", "x86_64", "2026-06-10T18:00:00.000Z"),
               ("debian-13-amd64-20261120-1100", "x86_64", "2026-11-20T11:00:00.000Z"),
               ("debian-13-amd64-20261201-0900", "x86_64", "2026-12-01T09:00:00.000Z"),
               ("debian-12-arm64-20260610-1800", "arm64", "2026-06-10T18:00:00.000Z"),
               ("debian-13-amd64-20261205-0900", "x86_64", "2026-12-05T09:00:00.000Z")]


def debian_on_aws(aws: AwsWorld, latest: dict[str, str]) -> dict[str, str]:
    """Debian's AMIs (owned by Debian's account) and the SSM "latest" parameters AWS keeps for
    it, *latest* naming which AMI each points at (by AMI name); returns name -> AMI id."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ssm.models import Parameter, ssm_backends

    ids = {}
    backend = aws.moto.backend(aws.region)
    for name, arch, created in DEBIAN_AMIS:
        ami = aws.ec2.register_image(Name=name, Architecture=arch, RootDeviceName="/dev/xvda",
                                     VirtualizationType="hvm")["ImageId"]
        image = backend.amis[ami]
        image.owner_id, image.architecture = DEBIAN_ACCOUNT, arch
        image.creation_date = datetime.fromisoformat(created)
        image.launch_permissions.append({"Group": "all"})
        ids[name] = ami
    params = ssm_backends[DEFAULT_ACCOUNT_ID][aws.region]._parameters
    for path, name in latest.items():  # AWS writes these; an account cannot (moto refuses too)
        params[path].append(Parameter(
            account_id=DEFAULT_ACCOUNT_ID, name=path, value=ids[name], parameter_type="String",
            description=None, allowed_pattern=None, keyid=None,
            last_modified_date=datetime.now().timestamp(), version=1, data_type="aws:ec2:image"))
    return ids


#: the "latest" pointer lags the newest AMI (it is published after its checks): the pointer wins
LATEST = {"/aws/service/debian/release/trixie/latest/amd64": "debian-13-amd64-20261201-0900",
          "/aws/service/debian/release/13/latest/amd64": "debian-13-amd64-20261201-0900",
          "/aws/service/debian/release/bookworm/latest/arm64": "debian-12-arm64-20260610-1800"}


def images_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "debian_cloud_tests.cli", "images", *args],
                          capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})


def test_aws_lists_debians_amis_newest_first_with_the_latest_pointers(aws: AwsWorld) -> None:
    ids = debian_on_aws(aws, LATEST)
    proc = images_cli("--provider=aws", f"--region={aws.region}", "--release=trixie", "--json")
    assert proc.returncode == 0, proc.stderr
    listed = json.loads(proc.stdout)
    assert [i["name"] for i in listed] == ["debian-13-amd64-20261205-0900", "debian-13-amd64-20261201-0900",
                                           "debian-13-amd64-20261120-1100"]
    assert listed[1]["id"] == ids["debian-13-amd64-20261201-0900"]
    assert sorted(listed[1]["pointers"]) == sorted(
        p for p, n in LATEST.items() if n == "debian-13-amd64-20261201-0900")
    assert listed[0]["pointers"] == [] and listed[0]["codename"] == "trixie"
    arm64 = json.loads(images_cli("--provider=aws", f"--region={aws.region}", "--release=12",
                                  "--arch=arm64", "--json").stdout)
    assert [i["name"] for i in arm64] == ["debian-12-arm64-20260610-1800"]
    # the AMI the emulated EC2 starts with is named debian-12-… but is not Debian's
    assert aws.ami not in {i["id"] for i in json.loads(images_cli(
        "--provider=aws", f"--region={aws.region}", "--json").stdout)}


def _spec(image: str, arch: Arch = Arch.AMD64, **options: str) -> LaunchSpec:
    return LaunchSpec(image=image, arch=arch, run_id="20260101120000-abc123", boot_timeout=60,
                      options=options)


def test_an_alias_resolves_to_the_image_the_latest_pointer_names(aws: AwsWorld) -> None:
    ids = debian_on_aws(aws, LATEST)
    aws_provider = AwsProvider()
    spec = aws_provider.validate(_spec("debian-13", region=aws.region))
    assert spec.image == ids["debian-13-amd64-20261201-0900"]  # not the newer, unpointed one
    assert aws_provider.properties()["image_alias"] == "debian-13"
    arm64 = AwsProvider().validate(_spec("debian-bookworm-arm64", region=aws.region))
    assert arm64.image == ids["debian-12-arm64-20260610-1800"] and arm64.arch is Arch.ARM64


def test_an_alias_without_a_pointer_takes_the_newest(aws: AwsWorld) -> None:
    ids = debian_on_aws(aws, {})
    assert AwsProvider().validate(_spec("debian-13", region=aws.region)).image == \
        ids["debian-13-amd64-20261205-0900"]


def test_an_alias_naming_nothing_is_one_line_and_exit_57(aws: AwsWorld, tmp_path: Path) -> None:
    debian_on_aws(aws, LATEST)
    with pytest.raises(AliasNotFoundError, match=r"^--image debian-13-arm64: aws offers no Debian 13 "
                       r"arm64 image in eu-west-3; `debian-cloud-tests images --provider aws` lists"):
        AwsProvider().validate(_spec("debian-13-arm64", region=aws.region))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--provider=aws",
                           "--image=debian-13-arm64", f"--region={aws.region}"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == AliasNotFoundError.exit_code, proc.stdout[-2000:] + proc.stderr
    assert "aws offers no Debian 13 arm64 image" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_gce_lists_the_families_images_and_the_alias_takes_the_familys(
        gce: FakeGce, tmp_path: Path) -> None:  # noqa: F811
    gce.add_image("debian-13-trixie-v20261101", family="debian-13", created="2026-11-01T00:00:00.000-08:00")
    gce.add_image("debian-13-trixie-v20261201", family="debian-13", created="2026-12-01T00:00:00.000-08:00")
    gce.add_image("debian-13-trixie-v20261205", family="debian-13", created="2026-12-05T00:00:00.000-08:00",
                  deprecated="DEPRECATED")  # withdrawn: the family skips it
    gce.add_image("debian-13-trixie-arm64-v20261201", family="debian-13-arm64", arch="ARM64",
                  created="2026-12-01T00:00:00.000-08:00")
    proc = images_cli("--provider=gce", "--release=13", "--arch=amd64", "--json",
                      env=gce_env(gce, tmp_path))
    assert proc.returncode == 0, proc.stderr
    listed = json.loads(proc.stdout)
    assert [i["name"] for i in listed] == ["debian-13-trixie-v20261205", "debian-13-trixie-v20261201",
                                           "debian-13-trixie-v20261101"]
    assert [i["pointers"] for i in listed] == [[], ["family debian-13"], []]
    assert listed[0]["extra"]["deprecated"] == "DEPRECATED"
    p = provider(gce)
    spec = p.validate(_spec("debian-13", zone=ZONE))
    assert spec.image == "projects/debian-cloud/global/images/debian-13-trixie-v20261201"
    assert p.properties()["image_alias"] == "debian-13"


def test_images_bad_input_is_one_line() -> None:
    proc = images_cli("--provider=aws", "--release=14")
    assert proc.returncode == 20 and "--release '14': give one of 12 (bookworm), 13 (trixie)" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_azure_lists_debians_marketplace_skus_and_the_alias_takes_the_generations_latest(
        arm: FakeArm) -> None:  # noqa: F811
    arm.marketplace.update({("debian-13", "13"): ["0.20261101.2001", "0.20261201.2101"],
                            ("debian-13", "13-gen2"): ["0.20261101.2001", "0.20261201.2101",
                                                       "0.20261205.2150"],
                            ("debian-13", "13-arm64"): ["0.20261201.2101"],
                            ("debian-13-daily", "13-gen2"): ["0.20261206.2200"]})  # not a release offer
    listed = newest_first(AzureImages(azure_provider(arm).clients()).offered(Query("13", "amd64"), LOCATION))
    assert [i.id for i in listed[:2]] == ["Debian:debian-13:13-gen2:0.20261205.2150",
                                          "Debian:debian-13:13-gen2:0.20261201.2101"]
    assert len(listed) == 5 and listed[0].created == "2026-12-05T00:00:00Z"
    assert {i.id for i in listed if i.pointers} == {"Debian:debian-13:13-gen2:0.20261205.2150",
                                                    "Debian:debian-13:13:0.20261201.2101"}
    p = azure_provider(arm)
    assert p.validate(_spec("debian-13", region=LOCATION)).image == "Debian:debian-13:13-gen2:0.20261205.2150"
    assert p.properties() == {"image_alias": "debian-13"}
    bios = azure_provider(arm).validate(replace(_spec("debian-13", region=LOCATION), firmware=Firmware.BIOS))
    assert bios.image == "Debian:debian-13:13:0.20261201.2101"
    arm64 = azure_provider(arm).validate(_spec("debian-13-arm64", region=LOCATION))
    assert arm64.image == "Debian:debian-13:13-arm64:0.20261201.2101" and arm64.arch is Arch.ARM64


def test_openstack_lists_glance_images_debian_marks_and_the_alias_takes_the_newest(
        ostack: FakeOpenStack) -> None:  # noqa: F811
    for name, arch, version, created in (
            ("Debian 13 (2026-11-20)", "x86_64", "13", "2026-11-20T10:00:00Z"),
            ("Debian 13 (2026-12-02)", "x86_64", "13", "2026-12-02T10:00:00Z"),
            ("Debian 13 arm64", "aarch64", "13", "2026-12-03T10:00:00Z"),
            ("Debian 12", "x86_64", "12", "2026-06-01T10:00:00Z")):
        ostack.add_image(name, arch, os_distro="debian", os_version=version, created_at=created)
    ostack.add_image("Ubuntu 24.04", "x86_64", os_distro="ubuntu", os_version="24.04",
                     created_at="2026-12-04T10:00:00Z")
    listed = newest_first(OpenStackImages().offered(Query("13", "amd64"), None))
    assert [i.name for i in listed] == ["Debian 13 (2026-12-02)", "Debian 13 (2026-11-20)"]
    provider = OpenStackProvider()
    spec = provider.validate(_spec("debian-13"))
    assert spec.image == listed[0].id and provider.properties()["image_alias"] == "debian-13"
    # an image the cloud itself names debian-12 is that one, not an alias
    own = ostack.add_image("debian-12", "x86_64")
    assert OpenStackProvider().validate(_spec("debian-12")).image == "debian-12"
    assert own in ostack.images

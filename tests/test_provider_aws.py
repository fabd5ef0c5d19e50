"""The AWS provider against moto, through the real SDK: what launch creates, how the machine
reads its console and reboots, and that destroy leaves nothing behind.  No VM: moto's instances
are backed by scripted consoles (see tests/fakes/moto_ec2.py)."""

from __future__ import annotations

import base64
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from debian_cloud_tests.providers.aws import AwsProvider
from debian_cloud_tests.providers.aws.instance import merge_console
from debian_cloud_tests.providers.aws.provider import AwsSettings
from debian_cloud_tests.providers.aws.resources import EXPIRES_TAG, RUN_ID_TAG

from debian_cloud_tests import console
from debian_cloud_tests.errors import ArchFirmwareError, ImageNotFoundError, UsageError
from debian_cloud_tests.expiry import parse as parse_expiry
from debian_cloud_tests.provider import available, get_provider
from debian_cloud_tests.spec import Arch, Firmware, HostKeySource, LaunchSpec, Shape

from .fakes.moto_ec2 import leftovers, no_aws_network

if TYPE_CHECKING:
    from .fakes.aws_world import AwsWorld

pytest_plugins = ["tests.fakes.aws_env"]

RUN_ID = "20260101120000-abc123"


def make_spec(world: AwsWorld, **kwargs: object) -> LaunchSpec:
    options = {"region": world.region, **kwargs.pop("options", {})}  # type: ignore[dict-item]
    fields = {"image": world.ami, "arch": Arch.AMD64, "run_id": RUN_ID, "boot_timeout": 60, **kwargs}
    return LaunchSpec(options=options, **fields)  # type: ignore[arg-type]


def launch(world: AwsWorld, tmp_path: Path, **kwargs: object):  # type: ignore[no-untyped-def]
    provider = AwsProvider()
    spec = provider.validate(make_spec(world, **kwargs))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    return provider, spec, provider.launch(spec, run_dir)


def tags_of(resource: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags") or resource.get("TagSet") or []}


def test_plugin_and_provider_import_without_boto3() -> None:
    code = ("import sys, debian_cloud_tests.plugin, debian_cloud_tests.providers.aws; "
            "sys.exit(1 if {'boto3', 'botocore'} & set(sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_registry_finds_aws() -> None:
    assert "aws" in available()
    assert isinstance(get_provider("aws"), AwsProvider)


def test_validate_fills_in_what_the_ami_says(aws: AwsWorld) -> None:
    no_aws_network()
    spec = AwsProvider().validate(make_spec(aws, arch=Arch.ARM64))
    assert (spec.arch, spec.firmware, spec.instance_type) == (Arch.AMD64, Firmware.BIOS, "t3.small")
    settings = spec.settings_as(AwsSettings)
    assert settings.region == aws.region
    assert settings.ssh_source == "127.0.0.1/32"
    assert settings.shape == Shape(vcpus=2, memory_mib=2048)


def test_arm64_ami_gets_a_graviton_type_and_uefi(aws: AwsWorld) -> None:
    aws.ami = aws.moto.register_ami(arch="arm64", boot_mode="uefi")
    spec = AwsProvider().validate(make_spec(aws))
    assert (spec.arch, spec.firmware, spec.instance_type) == (Arch.ARM64, Firmware.UEFI, "t4g.small")
    with pytest.raises(ArchFirmwareError, match=r"t3\.small runs x86_64"):
        AwsProvider().validate(make_spec(aws, instance_type="t3.small"))
    with pytest.raises(ArchFirmwareError, match="--firmware bios"):
        AwsProvider().validate(make_spec(aws, firmware=Firmware.BIOS))


def test_unknown_instance_type_is_a_usage_error(aws: AwsWorld) -> None:
    with pytest.raises(UsageError, match=r"--instance-type m9z\.huge"):
        AwsProvider().validate(make_spec(aws, instance_type="m9z.huge"))


def test_launch_console_reboot_destroy_leaves_nothing(aws: AwsWorld, tmp_path: Path) -> None:
    before = datetime.now(UTC)
    _, _, machine = launch(aws, tmp_path)
    instance_id = machine.facts.instance_id
    desc = aws.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]

    # what was created, and how
    assert desc["State"]["Name"] == "running" and desc["InstanceType"] == "t3.small"
    assert desc["MetadataOptions"]["HttpTokens"] == "required"
    group_ids = [g["GroupId"] for g in desc["NetworkInterfaces"][0]["Groups"]]
    groups = aws.ec2.describe_security_groups(GroupIds=group_ids)
    (group,) = groups["SecurityGroups"]
    (rule,) = group["IpPermissions"]
    assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 22, 22)
    assert [r["CidrIp"] for r in rule["IpRanges"]] == ["127.0.0.1/32"]
    assert not rule.get("Ipv6Ranges")
    (key,) = aws.ec2.describe_key_pairs()["KeyPairs"]
    assert key["KeyName"] == desc["KeyName"]
    pub = Path(str(machine.ssh.key_file) + ".pub").read_text().split()[1]
    user_data = aws.ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    text = base64.b64decode(user_data["UserData"]["Value"]).decode()
    assert text.startswith("## template: jinja\n#cloud-config\n") and pub in text
    assert "{{ v1.instance_id }}" in text

    # tags on every resource
    volumes = aws.ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id",
                                                 "Values": [instance_id]}])["Volumes"]
    assert volumes
    for resource in [desc, group, key, *volumes]:
        tags = tags_of(resource)
        assert tags[RUN_ID_TAG] == RUN_ID, resource
        expires = parse_expiry(tags[EXPIRES_TAG])
        assert expires and before + timedelta(hours=2) < expires < before + timedelta(hours=4)

    # what the machine says about itself
    facts = machine.facts
    assert (facts.provider, facts.datasource, facts.arch, facts.region) == ("aws", "Ec2", Arch.AMD64,
                                                                           aws.region)
    assert facts.hostname == desc["PrivateDnsName"] and facts.instance_type == "t3.small"
    assert facts.zone == desc["Placement"]["AvailabilityZone"]
    assert (machine.ssh.host, machine.ssh.port, machine.ssh.user) == (desc["PublicIpAddress"], 22,
                                                                      "debian")
    assert machine.ssh.key_file.stat().st_mode & 0o077 == 0

    # console: empty at first, as on EC2, then the host keys block
    assert machine.console_log() == ""
    machine._read_at = float("-inf")
    assert console.announced_host_keys(machine.console_log()) == [aws.machines.host_key]
    machine.hard_reset()
    assert aws.machines.reboots == [instance_id]
    assert machine.is_alive()

    assert machine.destroy() == []
    assert machine.destroy() == []
    assert not machine.is_alive()
    assert leftovers(aws.moto) == {}
    assert aws.machines.stopped == [instance_id]


def test_injected_host_key_and_existing_group(aws: AwsWorld, tmp_path: Path) -> None:
    vpc = aws.ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    theirs = aws.ec2.create_security_group(GroupName="theirs", Description="x", VpcId=vpc)["GroupId"]
    _, spec, machine = launch(aws, tmp_path, host_key_source=HostKeySource.INJECTED,
                              options={"security_group": theirs})
    assert spec.settings_as(AwsSettings).ssh_source is None
    assert machine.host_keys_hint() and machine.host_keys_hint()[0].startswith("ssh-ed25519 ")
    assert machine.destroy() == []
    assert leftovers(aws.moto) == {"security_groups": [theirs]}


def test_disk_size_sets_the_root_volume(aws: AwsWorld, tmp_path: Path) -> None:
    _, _, machine = launch(aws, tmp_path, disk_size="+2G")
    volumes = aws.ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id",
                                                 "Values": [machine.facts.instance_id]}])["Volumes"]
    (image,) = aws.ec2.describe_images(ImageIds=[aws.ami])["Images"]
    size = image["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] + 2
    assert [v["Size"] for v in volumes] == [size] and machine.facts.disk_size == size * 1024**3
    assert machine.destroy() == []
    with pytest.raises(UsageError, match="whole GiB"):
        AwsProvider().validate(make_spec(aws, disk_size="1500M"))


def test_nonexistent_ami_is_a_clear_error(aws: AwsWorld) -> None:
    with pytest.raises(ImageNotFoundError, match=f"ami-0123456789abcdef0: no such AMI in {aws.region}"):
        AwsProvider().validate(make_spec(aws, image="ami-0123456789abcdef0"))
    with pytest.raises(UsageError, match="give an AMI id"):
        AwsProvider().validate(make_spec(aws, image="debian-12.qcow2"))
    assert leftovers(aws.moto) == {}


def test_runner_address_must_be_known(aws: AwsWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DCT_AWS_CHECKIP_URL", "http://127.0.0.1:9/")
    from debian_cloud_tests.errors import ProviderError

    with pytest.raises(ProviderError, match="DCT_AWS_SOURCE_ADDRESS"):
        AwsProvider().validate(make_spec(aws))
    monkeypatch.setenv("DCT_AWS_SOURCE_ADDRESS", "0.0.0.0")
    with pytest.raises(UsageError, match="refusing to open SSH to every address"):
        AwsProvider().validate(make_spec(aws))
    monkeypatch.setenv("DCT_AWS_SOURCE_ADDRESS", "2001:db8::5")
    assert AwsProvider().validate(make_spec(aws)).settings_as(AwsSettings).ssh_source == "2001:db8::5/128"


def test_console_asks_for_the_latest_output(aws: AwsWorld, tmp_path: Path) -> None:
    """Without Latest=True a Nitro instance answers with a snapshot from around its start, which
    never shows the host keys printed later; moto takes the parameter (and ignores it)."""
    _, _, machine = launch(aws, tmp_path)
    machine.console_log()
    machine._read_at = float("-inf")
    assert console.announced_host_keys(machine.console_log()) == [aws.machines.host_key]
    assert aws.hooks.console_latest == [True, True]
    raw = aws.moto.client().get_console_output(InstanceId=machine.instance_id, Latest=True)
    assert raw["InstanceId"] == machine.instance_id
    assert machine.destroy() == [] and leftovers(aws.moto) == {}


def test_console_falls_back_where_latest_is_refused(aws: AwsWorld, tmp_path: Path) -> None:
    """A Xen instance type (or an EC2-compatible API) refuses Latest: the plain window is read,
    then and from then on."""
    _, _, machine = launch(aws, tmp_path)
    aws.hooks.fail("get_console_output", "UnsupportedOperation",
                   message="The latest console output is only available on Nitro instances")
    assert machine.console_log() == "" and machine.platform_log() == ""
    machine._read_at = float("-inf")
    assert console.announced_host_keys(machine.console_log()) == [aws.machines.host_key]
    assert aws.hooks.calls.count("get_console_output") == 3
    assert aws.hooks.console_latest == [None, None]
    assert machine.destroy() == [] and leftovers(aws.moto) == {}


@pytest.mark.parametrize(("old", "new", "merged"), [
    ("", "", ""),
    ("boot\n", "", "boot\n"),
    ("a\nb\n", "a\nb\nc\n", "a\nb\nc\n"),
    ("x" * 300 + "y" * 300, "y" * 300 + "z", "x" * 300 + "y" * 300 + "z"),
    ("old\n", "unrelated\n", "old\nunrelated\n"),
])
def test_console_windows_are_stitched(old: str, new: str, merged: str) -> None:
    assert merge_console(old, new) == merged



def test_subnet_decides_the_vpc_of_the_group(aws: AwsWorld, tmp_path: Path) -> None:
    vpc = aws.ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet = aws.ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24")["Subnet"]["SubnetId"]
    _, spec, machine = launch(aws, tmp_path, options={"subnet": subnet})
    assert spec.settings_as(AwsSettings).vpc_id == vpc
    desc = aws.ec2.describe_instances(InstanceIds=[machine.facts.instance_id])
    nic = desc["Reservations"][0]["Instances"][0]["NetworkInterfaces"][0]
    assert nic["SubnetId"] == subnet
    (group,) = aws.ec2.describe_security_groups(GroupIds=[nic["Groups"][0]["GroupId"]])["SecurityGroups"]
    assert group["VpcId"] == vpc
    assert machine.destroy() == [] and leftovers(aws.moto) == {}

    default_vpc = aws.ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])
    other = aws.ec2.create_security_group(GroupName="elsewhere", Description="x",
                                          VpcId=default_vpc["Vpcs"][0]["VpcId"])["GroupId"]
    with pytest.raises(UsageError, match=f"--security-group {other} is in"):
        AwsProvider().validate(make_spec(aws, options={"subnet": subnet, "security_group": other}))
    with pytest.raises(UsageError, match="--subnet subnet-0000000000: no such subnet"):
        AwsProvider().validate(make_spec(aws, options={"subnet": "subnet-0000000000"}))
    with pytest.raises(UsageError, match="--security-group sg-0000000000: no such security group"):
        AwsProvider().validate(make_spec(aws, options={"security_group": "sg-0000000000"}))


def _ingress(aws: AwsWorld, group: str) -> list[tuple[int, str]]:
    (found,) = aws.ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"]
    return sorted((p["FromPort"], r["CidrIp"]) for p in found["IpPermissions"]
                  for r in p.get("IpRanges", []))


def _private(aws: AwsWorld, machine) -> str:  # type: ignore[no-untyped-def]
    desc = aws.ec2.describe_instances(InstanceIds=[machine.facts.instance_id])
    return desc["Reservations"][0]["Instances"][0]["PrivateIpAddress"]


def test_a_link_opens_the_port_between_private_addresses_and_close_revokes(
        aws: AwsWorld, tmp_path: Path) -> None:
    """Each instance's group admits the port from the other's private address alone; the
    check reaches the other at its private address; close leaves the groups as they were."""
    provider, spec, a = launch(aws, tmp_path)
    (tmp_path / "run2").mkdir()
    b = provider.launch(spec, tmp_path / "run2")
    ssh_rules = {m: _ingress(aws, m.group_id) for m in (a, b)}
    link = a.link_to(b, 5201)
    assert [end.address for end in link.ends] == [_private(aws, a), _private(aws, b)]
    assert all(end.mac is None for end in link.ends)  # no interface of the link's own to set up
    assert _ingress(aws, a.group_id) == sorted([*ssh_rules[a], (5201, f"{_private(aws, b)}/32")])
    assert _ingress(aws, b.group_id) == sorted([*ssh_rules[b], (5201, f"{_private(aws, a)}/32")])
    assert link.close() == []
    assert {m: _ingress(aws, m.group_id) for m in (a, b)} == ssh_rules
    assert a.destroy() == [] and b.destroy() == [] and leftovers(aws.moto) == {}


def test_a_link_left_open_on_the_users_group_is_revoked_by_destroy(
        aws: AwsWorld, tmp_path: Path) -> None:
    """A run that ends before the check closes its link leaves the user's group as it was."""
    vpc = aws.ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    theirs = aws.ec2.create_security_group(GroupName="theirs", Description="x", VpcId=vpc)["GroupId"]
    provider, spec, a = launch(aws, tmp_path, options={"security_group": theirs})
    (tmp_path / "run2").mkdir()
    b = provider.launch(spec, tmp_path / "run2")
    a.link_to(b, 5201)
    assert len(_ingress(aws, theirs)) == 2
    assert a.destroy() == [] and b.destroy() == []
    assert _ingress(aws, theirs) == []
    assert leftovers(aws.moto) == {"security_groups": [theirs]}


def test_machines_in_two_vpcs_are_not_linked(aws: AwsWorld, tmp_path: Path) -> None:
    from debian_cloud_tests.errors import ProviderError

    vpc = aws.ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet = aws.ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24")["Subnet"]["SubnetId"]
    _, _, a = launch(aws, tmp_path)
    (tmp_path / "other").mkdir()
    _, _, b = launch(aws, tmp_path / "other", options={"subnet": subnet})
    with pytest.raises(ProviderError, match="their private addresses do not reach each other"):
        a.link_to(b, 5201)
    assert a.destroy() == [] and b.destroy() == [] and leftovers(aws.moto) == {}

"""Garbage collection of what crashed runs left behind: only our expired resources go."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from debian_cloud_tests.providers.aws import AwsProvider, resources
from debian_cloud_tests.providers.aws.gc import collect_garbage, main

from debian_cloud_tests import expiry
from debian_cloud_tests.errors import CleanupError
from debian_cloud_tests.rundir import reap
from debian_cloud_tests.spec import Arch, LaunchSpec

from .fakes.moto_ec2 import leftovers

if TYPE_CHECKING:
    from .fakes.aws_world import AwsWorld

pytest_plugins = ["tests.fakes.aws_env"]


def crashed_run(world: AwsWorld, tmp_path: Path, run_id: str) -> dict[str, str]:
    """A launched machine whose runner died: nothing destroys it."""
    provider = AwsProvider()
    spec = provider.validate(LaunchSpec(image=world.ami, arch=Arch.AMD64, run_id=run_id,
                                        options={"region": world.region}))
    run_dir = tmp_path / run_id
    run_dir.mkdir()
    created = provider.launch(spec, run_dir).created  # type: ignore[attr-defined]
    return {"instance": created.instance_id, "group": created.group_id, "key": created.key_id}


def not_ours(world: AwsWorld) -> dict[str, str]:
    """Resources of someone else in the same account: untagged, or tagged but never expiring."""
    ec2 = world.ec2
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    group = ec2.create_security_group(GroupName="web", Description="theirs", VpcId=vpc)["GroupId"]
    key = ec2.import_key_pair(KeyName="theirs", PublicKeyMaterial=(
        b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB8Ht8Z3j6yDWPBHQtOp/R9rjWvfMC9bgJr7e3tQ+nOa x"),
        TagSpecifications=[{"ResourceType": "key-pair", "Tags": [
            {"Key": resources.EXPIRES_TAG, "Value": "never"}]}])["KeyPairId"]
    instance = ec2.run_instances(ImageId=world.ami, MinCount=1, MaxCount=1)["Instances"][0]
    return {"instance": instance["InstanceId"], "group": group, "key": key}


def test_expired_resources_are_collected_and_nothing_else(aws: AwsWorld, tmp_path: Path) -> None:
    first = crashed_run(aws, tmp_path, "20260101000000-aaaaaa")
    second = crashed_run(aws, tmp_path, "20260101000000-bbbbbb")
    theirs = not_ours(aws)
    now = datetime.now(UTC)

    assert collect_garbage(aws.region, now) == [], "nothing has expired yet"
    assert len(leftovers(aws.moto)["instances"]) == 3

    deleted = collect_garbage(aws.region, now + expiry.TTL + timedelta(minutes=1))
    ours = [first, second]
    assert sorted(deleted) == sorted(r[kind] for r in ours for kind in ("instance", "group", "key"))
    assert deleted.index(first["instance"]) < deleted.index(first["group"]), "instances go first"
    assert leftovers(aws.moto) == {"instances": [theirs["instance"]],
                                   "security_groups": [theirs["group"]], "key_pairs": [theirs["key"]]}
    assert collect_garbage(aws.region, now + timedelta(days=2)) == []


def test_naive_now_is_utc_and_failures_are_reported_after_trying_everything(
        aws: AwsWorld, tmp_path: Path) -> None:
    run = crashed_run(aws, tmp_path, "20260101000000-cccccc")
    later = (datetime.now(UTC) + timedelta(hours=4)).replace(tzinfo=None)
    aws.hooks.fail("delete_key_pair", "UnauthorizedOperation")
    with pytest.raises(CleanupError) as info:
        collect_garbage(aws.region, later)
    assert "key pair dct-20260101000000-cccccc-" in str(info.value)
    assert run["instance"] in info.value.detail and run["group"] in info.value.detail
    assert leftovers(aws.moto) == {"key_pairs": [run["key"]]}
    assert collect_garbage(aws.region, later) == [run["key"]]


def test_command_line(aws: AwsWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--region", aws.region]) == 0
    assert capsys.readouterr().out == ""


def test_a_dead_runs_guard_removes_that_run_at_once(aws: AwsWorld, tmp_path: Path) -> None:
    """SIGKILL leaves the run dir to its guard (or to local gc): reaping it removes that run's
    resources at once, hours before they expire, and nobody else's."""
    first = crashed_run(aws, tmp_path, "20260101000000-aaaaaa")
    second = crashed_run(aws, tmp_path, "20260101000000-bbbbbb")
    theirs = not_ours(aws)

    reap(tmp_path / "20260101000000-aaaaaa")

    left = {i for ids in leftovers(aws.moto).values() for i in ids}
    assert not left & set(first.values()), left
    assert {*second.values(), *theirs.values()} <= left
    assert not (tmp_path / "20260101000000-aaaaaa").exists()

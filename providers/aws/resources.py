"""What a run creates besides the instance: a key pair and a security group, tagged.

Every resource carries ``dct:run-id`` and ``dct:expires`` from the moment it exists (tags are
part of the create call, never a second step), so a run that dies half-way leaves nothing that
:mod:`gc` cannot find.  SSH is opened to this runner's own address only, never to the world.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from debian_cloud_tests import expiry, interrupts, sweep
from debian_cloud_tests.errors import DCTError, ProviderError, UsageError

from . import retry
from .errors import AwsError

RUN_ID_TAG = "dct:run-id"
EXPIRES_TAG = "dct:expires"
#: on an AMI `publish` registered: the sha256 of the bytes uploaded for it
SHA256_TAG = "dct:uploaded-sha256"
NOT_FOUND = ("InvalidGroup.NotFound", "InvalidKeyPair.NotFound", "InvalidInstanceID.NotFound")


def code_of(exc: BaseException) -> str:
    """AWS's error code carried by one of our errors ("" when there is none)."""
    return str(getattr(exc, "code", ""))


def _why(exc: DCTError) -> str:
    return exc.message.removeprefix("aws: ")


def tags(run_id: str, name: str, now: datetime | None = None) -> list[dict[str, str]]:
    return [{"Key": "Name", "Value": name}, {"Key": RUN_ID_TAG, "Value": run_id},
            {"Key": EXPIRES_TAG, "Value": expiry.mark(now)}]


def tag_specs(resource_types: tuple[str, ...], tag_list: list[dict[str, str]]) -> list[dict[str, Any]]:
    return [{"ResourceType": kind, "Tags": tag_list} for kind in resource_types]


def default_vpc(ec2: Any, region: str) -> str:
    found = retry.call(ec2.describe_vpcs, "describe_vpcs",
                       Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    if not found:
        raise UsageError(f"aws: {region} has no default VPC; give --subnet (and its VPC is used)")
    return str(found[0]["VpcId"])


def subnet_vpc(ec2: Any, subnet: str) -> str:
    try:
        found = retry.call(ec2.describe_subnets, "describe_subnets", SubnetIds=[subnet])["Subnets"]
    except AwsError as exc:
        if exc.code.startswith("InvalidSubnet"):
            raise UsageError(f"--subnet {subnet}: no such subnet ({exc.code})") from None
        raise
    return str(found[0]["VpcId"])


def group_vpc(ec2: Any, group: str) -> str:
    try:
        found = retry.call(ec2.describe_security_groups, "describe_security_groups",
                           GroupIds=[group])["SecurityGroups"]
    except AwsError as exc:
        if exc.code.startswith("InvalidGroup"):
            raise UsageError(f"--security-group {group}: no such security group ({exc.code})") from None
        raise
    return str(found[0].get("VpcId", ""))


def import_key(ec2: Any, name: str, public_key: str, tag_list: list[dict[str, str]]) -> str:
    """Import our fresh public key; returns its KeyPairId."""
    out = retry.call(ec2.import_key_pair, "import_key_pair", KeyName=name,
                     PublicKeyMaterial=public_key.encode(),
                     TagSpecifications=tag_specs(("key-pair",), tag_list))
    return str(out["KeyPairId"])


def create_group(ec2: Any, name: str, vpc_id: str, cidr: str, tag_list: list[dict[str, str]]) -> str:
    """A security group letting *cidr* (and only it) reach port 22; returns its id."""
    out = retry.call(ec2.create_security_group, "create_security_group", GroupName=name,
                     Description=f"debian-cloud-tests {name}: SSH from the test runner only",
                     VpcId=vpc_id, TagSpecifications=tag_specs(("security-group",), tag_list))
    group_id = str(out["GroupId"])
    ranges = ({"Ipv6Ranges": [{"CidrIpv6": cidr, "Description": "test runner"}]} if ":" in cidr
              else {"IpRanges": [{"CidrIp": cidr, "Description": "test runner"}]})
    try:
        retry.call(ec2.authorize_security_group_ingress, "authorize_security_group_ingress",
                   GroupId=group_id,
                   IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, **ranges}])
    except BaseException:
        delete_group(ec2, group_id)
        raise
    return group_id


def delete_group(ec2: Any, group_id: str, attempts: int = 12) -> list[BaseException]:
    """Delete a security group, waiting out DependencyViolation (an instance's network interface
    goes some time after the instance: two minutes of backoff at most); a group already gone is
    not a failure."""
    failed = sweep.delete(
        lambda: retry.call(ec2.delete_security_group, "delete_security_group", GroupId=group_id),
        gone=lambda exc: code_of(exc) in NOT_FOUND, sleep=retry.sleep, attempts=attempts,
        again=lambda exc: code_of(exc) == "DependencyViolation")
    return [AwsError(f"aws: security group {group_id} not deleted: {_why(exc)}", code_of(exc))
            for exc in failed if isinstance(exc, DCTError)]


def delete_key(ec2: Any, key_name: str) -> list[BaseException]:
    """Delete a key pair by name (unique in a region, and understood by every EC2 flavour)."""
    try:
        retry.call(ec2.delete_key_pair, "delete_key_pair", KeyName=key_name)
    except DCTError as exc:
        if code_of(exc) not in NOT_FOUND:
            return [AwsError(f"aws: key pair {key_name} not deleted: {_why(exc)}", code_of(exc))]
    return []


def instance_state(ec2: Any, instance_id: str) -> dict[str, Any] | None:
    """The instance's description, None while EC2 does not know it yet (eventual consistency)."""
    try:
        out = retry.call(ec2.describe_instances, "describe_instances", InstanceIds=[instance_id])
    except AwsError as exc:
        if exc.code == "InvalidInstanceID.NotFound":
            return None
        raise
    found = [i for r in out["Reservations"] for i in r["Instances"]]
    return found[0] if found else None


def groups_named(ec2: Any, name: str, attempts: int = 3) -> list[str]:
    """Security groups named *name* and tagged as ours: what a create_security_group call whose
    reply never came may have created."""
    def ask() -> list[str]:
        out = retry.call(ec2.describe_security_groups, "describe_security_groups", Filters=[
            {"Name": "group-name", "Values": [name]}, {"Name": "tag-key", "Values": [EXPIRES_TAG]}])
        return [str(g["GroupId"]) for g in out["SecurityGroups"]]
    return _listed_soon(ask, attempts)


def launched_by(ec2: Any, name: str, attempts: int = 3) -> list[str]:
    """Live instances named *name*: what a run_instances call whose reply never came (Ctrl-C
    while it was in flight) may have started."""
    def ask() -> list[str]:
        out = retry.call(ec2.describe_instances, "describe_instances", Filters=[
            {"Name": "tag:Name", "Values": [name]},
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}])
        return [str(i["InstanceId"]) for r in out["Reservations"] for i in r["Instances"]]
    return _listed_soon(ask, attempts)


def _listed_soon(ask: Callable[[], list[str]], attempts: int) -> list[str]:
    """What *ask* lists, asked up to *attempts* times a second apart: EC2 may list a resource
    created in the last moment only a moment later."""
    for attempt in range(attempts):
        found = ask()
        if found or attempt == attempts - 1:
            return found
        time.sleep(1.0)
    return []


def terminate(ec2: Any, instance_ids: list[str], timeout: float = 600.0) -> list[BaseException]:
    """Terminate instances and wait until EC2 says they are gone; returns the failures."""
    if not instance_ids:
        return []
    try:
        retry.call(ec2.terminate_instances, "terminate_instances", InstanceIds=instance_ids)
    except DCTError as exc:
        if code_of(exc) not in NOT_FOUND:
            return [AwsError(f"aws: instances {', '.join(instance_ids)} not terminated: {_why(exc)}",
                             code_of(exc))]
    errors: list[BaseException] = []
    for instance_id in instance_ids:
        try:
            wait_state(ec2, instance_id, {"terminated"}, timeout)
        except DCTError as exc:
            errors.append(exc)
    return errors


def wait_state(ec2: Any, instance_id: str, wanted: set[str], timeout: float,
               bad: frozenset[str] = frozenset(), interruptible: bool = False) -> dict[str, Any]:
    """Poll with exponential backoff (1 s doubling to 15 s) until the state is one of *wanted*;
    *interruptible* (a launch's wait, never a clean-up's) stops when the run is asked to stop.

    Raises:
        ProviderError: the state became one of *bad* (quoting EC2's reason) or time ran out.
    """
    deadline = time.monotonic() + timeout
    delay = 1.0
    state = "unknown"
    while True:
        if interruptible:
            interrupts.check()
        desc = instance_state(ec2, instance_id)
        if desc is None and "terminated" in wanted:
            return {}
        if desc is not None:
            state = desc["State"]["Name"]
            if state in wanted:
                return desc
            if state in bad:
                reason = desc.get("StateReason", {}).get("Message") or desc.get("StateTransitionReason")
                raise AwsError(f"aws: instance {instance_id} is {state}: {reason or 'no reason given'}",
                               desc.get("StateReason", {}).get("Code", ""))
        if time.monotonic() >= deadline:
            raise ProviderError(f"aws: instance {instance_id} still {state} after {timeout:.0f}s "
                                f"(waiting for {'/'.join(sorted(wanted))})")
        retry.sleep(min(delay, max(deadline - time.monotonic(), 0.0)))
        delay = min(delay * 2, 15.0)

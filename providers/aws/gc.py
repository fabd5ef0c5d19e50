"""Collect what crashed runs left behind: every instance, security group and key pair whose
``dct:expires`` tag is in the past, and the private AMIs and snapshots of an interrupted or held
`publish` (a released one has no expiry: it is never collected).

A run removes its own resources; this is for the runs that could not (a killed runner, a lost
network).  Only resources carrying our tag are looked at, and only expired ones are touched, so
it is safe to run from cron while other runs are in flight:
``python -m debian_cloud_tests.providers.aws.gc --region eu-west-1``.  A killed run's guard (or
local gc) removes that run's resources at once through :func:`collect_run`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from debian_cloud_tests import expiry
from debian_cloud_tests.errors import DCTError, guarded
from debian_cloud_tests.gc import print_deleted
from debian_cloud_tests.rundir import require_run_id
from debian_cloud_tests.sweep import Sweep

from . import resources, retry, session
from .resources import EXPIRES_TAG, RUN_ID_TAG

LIVE_STATES = ["pending", "running", "stopping", "stopped", "shutting-down"]
_OURS = {"Name": "tag-key", "Values": [EXPIRES_TAG]}


def _expired(tags: list[dict[str, str]] | None, now: datetime) -> bool:
    return expiry.expired(next((t["Value"] for t in tags or [] if t["Key"] == EXPIRES_TAG), None), now)


def _pages(ec2: Any, operation: str, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every item of a listing, page after page, each page call retried on its own."""
    call = getattr(ec2, operation)
    token: str | None = None
    while True:
        page = retry.call(call, operation, **kwargs, **({"NextToken": token} if token else {}))
        if key == "Instances":
            yield from (i for r in page["Reservations"] for i in r["Instances"])
        else:
            yield from page[key]
        token = page.get("NextToken")
        if not token:
            return


def collect_garbage(region: str | None, now: datetime) -> list[str]:
    """Delete expired resources in *region* (None: the configured one); returns their ids.

    Instances go first (a group in use cannot be deleted), then security groups, then key pairs.

    Raises:
        CleanupError: after trying everything, listing what could not be deleted.
    """
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    return _collect(region, _OURS, lambda tags: _expired(tags, now))


def collect_run(region: str | None, run_id: str) -> list[str]:
    """Delete every resource of one run, expired or not: the run is known to be dead (its
    guard saw it end without cleaning up); returns their ids.

    *run_id* must be one rundir.new_run_id makes: EC2 filters take ``*`` and ``?`` as wildcards,
    and a run id of ``*`` would name every run's resources.

    Raises:
        UsageError: *run_id* is not a run id; nothing was looked at.
        CleanupError: after trying everything, listing what could not be deleted.
    """
    require_run_id("aws", run_id)
    return _collect(region, {"Name": f"tag:{RUN_ID_TAG}", "Values": [run_id]}, lambda tags: True)


def _collect(region: str | None, ours: dict[str, Any],
             chosen: Callable[[list[dict[str, str]] | None], bool]) -> list[str]:
    ec2 = session.ec2_client(session.new_session(region))
    sweep = Sweep()
    instances = [i["InstanceId"] for i in _pages(
        ec2, "describe_instances", "Instances",
        Filters=[ours, {"Name": "instance-state-name", "Values": LIVE_STATES}])
        if chosen(i.get("Tags"))]
    failed = resources.terminate(ec2, instances)  # one call for all of them
    sweep.errors += failed
    # where it failed, say which ones are gone despite the failure
    sweep.deleted += [i for i in instances if not failed or _gone(ec2, i)]

    for group in _pages(ec2, "describe_security_groups", "SecurityGroups", Filters=[ours]):
        if chosen(group.get("Tags")):
            sweep.record(group["GroupId"], resources.delete_group(ec2, group["GroupId"]))

    keys = retry.call(ec2.describe_key_pairs, "describe_key_pairs", Filters=[ours])["KeyPairs"]
    for key in keys:
        if chosen(key.get("Tags")):
            sweep.record(key["KeyPairId"], resources.delete_key(ec2, key["KeyName"]))
    _collect_publications(ec2, ours, chosen, sweep)
    return sweep.done()


def _collect_publications(ec2: Any, ours: dict[str, Any],
                          chosen: Callable[[list[dict[str, str]] | None], bool], sweep: Sweep) -> None:
    """Private AMIs first (a snapshot an AMI uses cannot be deleted), then snapshots; only those
    still carrying an expiry, so a release is never undone."""
    def private(tags: list[dict[str, str]] | None) -> bool:
        return any(t["Key"] == EXPIRES_TAG for t in tags or []) and chosen(tags)

    images = retry.call(ec2.describe_images, "describe_images", Owners=["self"],
                        Filters=[ours])["Images"]
    for image in images:
        if private(image.get("Tags")):
            sweep.record(image["ImageId"], _attempt(ec2.deregister_image, "deregister_image",
                                                    ImageId=image["ImageId"]))
    for snapshot in _pages(ec2, "describe_snapshots", "Snapshots", OwnerIds=["self"], Filters=[ours]):
        if private(snapshot.get("Tags")):
            sweep.record(snapshot["SnapshotId"], _attempt(ec2.delete_snapshot, "delete_snapshot",
                                                          SnapshotId=snapshot["SnapshotId"]))


def _attempt(fn: Callable[..., Any], action: str, **kwargs: Any) -> list[BaseException]:
    try:
        retry.call(fn, action, **kwargs)
    except DCTError as exc:
        return [exc]
    return []


def _gone(ec2: Any, instance_id: str) -> bool:
    try:
        desc = resources.instance_state(ec2, instance_id)
    except DCTError:
        return False
    return desc is None or desc["State"]["Name"] == "terminated"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m debian_cloud_tests.providers.aws.gc",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--region", help="AWS region (default: from the SDK's configuration)")
    args = parser.parse_args(argv)
    return guarded(lambda: print_deleted(collect_garbage(args.region, datetime.now(UTC))))


if __name__ == "__main__":
    sys.exit(main())

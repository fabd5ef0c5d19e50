"""Collect what crashed runs left behind on OpenStack: servers whose ``dct-expires`` metadata,
security groups whose description's ``dct-expires``, and key pairs whose ``dct-<expiry>-…`` name
is in the past; and the private images an interrupted publish left, whose ``dct-expires``
property is (a released image has none).  A rule a peer link left on a group of the user's is
removed once the server it admits is gone.

Only resources marked by a run are looked at, and only expired ones are touched, so it is safe to
run beside running jobs: ``python -m debian_cloud_tests.providers.openstack.gc --os-cloud C``.  A
killed run's guard (or local gc) removes that run's resources at once through :func:`collect_run`.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from debian_cloud_tests import expiry
from debian_cloud_tests.errors import UsageError, guarded, swept
from debian_cloud_tests.gc import print_deleted
from debian_cloud_tests.rundir import require_run_id
from debian_cloud_tests.sweep import Sweep

from . import peerlink, resources, retry, session
from .resources import EXPIRES_KEY, RUN_ID_KEY


def collect_garbage(now: datetime, os_cloud: str | None = None, region: str | None = None,
                    conn: Any = None) -> list[str]:
    """Delete expired servers, then expired security groups, key pairs and private images;
    returns their names.

    Raises:
        CleanupError: after trying everything, listing what could not be deleted.
    """
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    conn = conn or session.connect(os_cloud, region)
    sweep = Sweep()
    for server in retry.call(lambda: list(conn.compute.servers()), "list servers"):
        if expiry.expired((server.metadata or {}).get(EXPIRES_KEY), now):
            sweep.record(f"server {server.name}", resources.delete_server(conn, str(server.id)))
    # a link's rule listed before the servers are, whose server is not among them, outlived it
    rules = peerlink.links_rules(conn)
    live = {str(s.id) for s in retry.call(lambda: list(conn.compute.servers()), "list servers")}
    for rule, source in rules:
        if source not in live:
            sweep.record(f"security group rule {rule.rule_id} (from server {source})",
                         peerlink.delete(conn, rule))
    for group in retry.call(lambda: list(conn.network.security_groups()), "list security groups"):
        marks = resources.description_marks(group.description)
        if expiry.expired(marks.get(EXPIRES_KEY), now):
            sweep.record(f"security group {group.name}",
                         resources.delete_security_group(conn, str(group.id)))
    for keypair in retry.call(lambda: list(conn.compute.keypairs()), "list key pairs"):
        if expiry.expired(resources.name_expiry(str(keypair.name)), now):
            sweep.record(f"key pair {keypair.name}", resources.delete_keypair(conn, str(keypair.name)))
    for image in retry.call(lambda: list(conn.image.images(visibility="private")), "list images"):
        props = image.properties or {}
        if image.visibility == "private" and props.get(RUN_ID_KEY) and \
                expiry.expired(props.get(EXPIRES_KEY), now):
            sweep.record(f"image {image.name} ({image.id})", resources.delete_image(conn, str(image.id)))
    return sweep.done()


def collect_run(run_id: str, cloud: str | None = None, region: str | None = None,
                name: str | None = None, conn: Any = None) -> list[str]:
    """Delete every server and security group of one run, expired or not, then their key pairs:
    the run is known to be dead (its guard saw it end without cleaning up); returns their names.

    Servers and groups are the run's when their mark is exactly *run_id*; a key pair carries no
    mark, so it is the run's when it shares the name of one of them, or is *name* (the name the
    run recorded before creating anything: a run killed just after its key pair has no other).

    Raises:
        UsageError: *run_id* is not a run id, or *name* not a run's name; nothing was looked at.
        CleanupError: after trying everything, listing what could not be deleted.
    """
    require_run_id("openstack", run_id)
    if name is not None and not resources.is_run_name(name):
        raise UsageError(f"openstack: {name!r} is not a name this tool gives "
                         "(dct-YYYYMMDDtHHMMSSz-xxxxxxxx); nothing was deleted")
    conn = conn or session.connect(cloud, region)
    names = {name} if name else set()
    gone: set[str] = set()  # the run's servers: the rules admitting them on any group go too
    deleted: list[str] = []
    errors: list[BaseException] = []
    for server in retry.call(lambda: list(conn.compute.servers()), "list servers"):
        if (server.metadata or {}).get(RUN_ID_KEY) == run_id or server.name in names:
            names.add(str(server.name))
            failed = resources.delete_server(conn, str(server.id))
            errors += failed
            deleted += [] if failed else [f"server {server.name}"]
            gone.add(str(server.id))
    for rule, source in peerlink.links_rules(conn) if gone else ():
        if source in gone:
            failed = peerlink.delete(conn, rule)
            errors += failed
            deleted += [] if failed else [f"security group rule {rule.rule_id} (from server {source})"]
    for group in retry.call(lambda: list(conn.network.security_groups()), "list security groups"):
        if resources.description_marks(group.description).get(RUN_ID_KEY) == run_id or \
                group.name in names:
            names.add(str(group.name))
            failed = resources.delete_security_group(conn, str(group.id))
            errors += failed
            deleted += [] if failed else [f"security group {group.name}"]
    for keypair in retry.call(lambda: list(conn.compute.keypairs()), "list key pairs"):
        if keypair.name in names and resources.is_run_name(keypair.name):
            failed = resources.delete_keypair(conn, str(keypair.name))
            errors += failed
            deleted += [] if failed else [f"key pair {keypair.name}"]
    return swept(deleted, errors)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m debian_cloud_tests.providers.openstack.gc",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--os-cloud", help="the cloud's name in clouds.yaml (default: OS_CLOUD)")
    parser.add_argument("--region", help="region (default: the cloud's region_name)")
    args = parser.parse_args(argv)
    return guarded(lambda: print_deleted(collect_garbage(datetime.now(UTC), args.os_cloud,
                                                         args.region)))


if __name__ == "__main__":
    sys.exit(main())

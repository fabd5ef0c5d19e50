"""Collect what crashed runs left behind on OpenStack: servers whose ``dct-expires`` metadata,
security groups whose description's ``dct-expires``, and key pairs whose ``dct-<expiry>-…`` name
is in the past.

Only resources marked by a run are looked at, and only expired ones are touched, so it is safe to
run beside running jobs: ``python -m debian_cloud_tests.providers.openstack.gc --os-cloud C``.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from debian_cloud_tests.errors import guarded, swept
from debian_cloud_tests.gc import print_deleted

from . import resources, retry, session
from .resources import EXPIRES_KEY


def _expired(when: datetime | None, now: datetime) -> bool:
    return when is not None and when < now


def collect_garbage(now: datetime, cloud: str | None = None, region: str | None = None,
                    conn: Any = None) -> list[str]:
    """Delete expired servers, then expired security groups and key pairs; returns their names.

    Raises:
        CleanupError: after trying everything, listing what could not be deleted.
    """
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    conn = conn or session.connect(cloud, region)
    deleted: list[str] = []
    errors: list[BaseException] = []
    for server in retry.call(lambda: list(conn.compute.servers()), "list servers"):
        if _expired(resources.parse_expiry((server.metadata or {}).get(EXPIRES_KEY, "")), now):
            failed = resources.delete_server(conn, str(server.id))
            errors += failed
            deleted += [] if failed else [f"server {server.name}"]
    for group in retry.call(lambda: list(conn.network.security_groups()), "list security groups"):
        marks = resources.description_marks(group.description)
        if _expired(resources.parse_expiry(marks.get(EXPIRES_KEY, "")), now):
            failed = resources.delete_security_group(conn, str(group.id))
            errors += failed
            deleted += [] if failed else [f"security group {group.name}"]
    for keypair in retry.call(lambda: list(conn.compute.keypairs()), "list key pairs"):
        if _expired(resources.name_expiry(str(keypair.name)), now):
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

"""Collect what crashed runs left behind on GCE: every instance whose ``dct-expires`` label, and
every firewall rule whose description's ``dct-expires``, is in the past.

Only resources marked by a run are looked at, and only expired ones are touched, so it is safe to
run beside running jobs: ``python -m debian_cloud_tests.providers.gce.gc --project P``.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from debian_cloud_tests.errors import guarded, swept
from debian_cloud_tests.gc import print_deleted

from . import resources, retry, session
from .resources import EXPIRES_LABEL


def _expired(value: str | None, now: datetime) -> bool:
    when = resources.parse_expiry(value) if value else None
    return when is not None and when < now


def collect_garbage(now: datetime, project: str | None = None, credentials: Any = None,
                    endpoint: str | None = None, region: str | None = None) -> list[str]:
    """Delete expired instances (every zone), then expired firewall rules; returns their names.

    *region* is accepted for a uniform call and ignored: firewall rules are global.

    Raises:
        CleanupError: after trying everything, listing what could not be deleted.
    """
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    c = session.make_clients(project, credentials, endpoint)
    deleted: list[str] = []
    errors: list[BaseException] = []
    from google.cloud import compute_v1

    pages = retry.call(c.instances.aggregated_list, "instances.aggregatedList",
                       request=compute_v1.AggregatedListInstancesRequest(
                           project=c.project, filter=f"labels.{EXPIRES_LABEL}:*"))
    for scope, listed in pages:
        for inst in listed.instances:
            if _expired(inst.labels.get(EXPIRES_LABEL), now):
                zone = scope.rsplit("/", 1)[-1]
                failed = resources.delete_instance(c, zone, inst.name)
                errors += failed
                deleted += [] if failed else [inst.name]
    for rule in retry.call(c.firewalls.list, "firewalls.list", project=c.project):
        marks = resources.description_marks(rule.description)
        if _expired(marks.get(EXPIRES_LABEL), now):
            failed = resources.delete_firewall(c, rule.name)
            errors += failed
            deleted += [] if failed else [rule.name]
    return swept(deleted, errors)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m debian_cloud_tests.providers.gce.gc",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--project", help="GCP project (default: from the credentials)")
    args = parser.parse_args(argv)
    return guarded(lambda: print_deleted(collect_garbage(datetime.now(UTC), args.project)))


if __name__ == "__main__":
    sys.exit(main())

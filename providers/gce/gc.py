"""Collect what crashed runs left behind on GCE: every instance whose ``dct-expires`` label, and
every firewall rule whose description's ``dct-expires``, is in the past; then the private images
an interrupted ``publish --cloud gce`` left (label ``dct-expires`` in the past: a release takes it
off first, so a released image is never one) and, with ``DCT_GCE_BUCKET`` set, the tarballs it
uploaded there (object metadata ``dct-expires`` in the past).

Only resources marked by a run are looked at, and only expired ones are touched, so it is safe to
run beside running jobs: ``python -m debian_cloud_tests.providers.gce.gc --project P``.  A killed
run's guard (or local gc) removes that run's resources at once through :func:`collect_run`, with
the project and endpoint its run dir recorded and credentials from the environment, as the run's.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from debian_cloud_tests import expiry
from debian_cloud_tests.errors import guarded
from debian_cloud_tests.gc import print_deleted
from debian_cloud_tests.rundir import require_run_id
from debian_cloud_tests.sweep import Sweep

from . import resources, retry, session
from .resources import EXPIRES_LABEL, RUN_ID_LABEL

BUCKET_ENV = "DCT_GCE_BUCKET"


def collect_garbage(now: datetime, project: str | None = None, credentials: Any = None,
                    endpoint: str | None = None, region: str | None = None,
                    bucket: str | None = None) -> list[str]:
    """Delete expired instances (every zone), expired firewall rules, then expired images and
    the expired objects in *bucket* (default ``DCT_GCE_BUCKET``; none: no object is looked at);
    returns their names.

    *region* is accepted for a uniform call and ignored: firewall rules and images are global.

    Raises:
        CleanupError: after trying everything, listing what could not be deleted.
    """
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    c = session.make_clients(project, credentials, endpoint)

    def expired(marks: Mapping[str, str]) -> bool:
        return expiry.expired(marks.get(EXPIRES_LABEL), now)

    sweep = Sweep()
    _sweep(c, f"labels.{EXPIRES_LABEL}:*", expired, sweep)
    _collect_images(c, expired, sweep)
    bucket = bucket or os.environ.get(BUCKET_ENV)
    if bucket:
        _collect_objects(c, credentials, bucket, expired, sweep)
    return sweep.done()


def collect_run(project: str | None, run_id: str, endpoint: str | None = None,
                credentials: Any = None) -> list[str]:
    """Delete every instance (every zone) and firewall rule of one run, expired or not: the run
    is known to be dead (its guard saw it end without cleaning up); returns their names.

    *run_id* must be one rundir.new_run_id makes, checked before any request: it goes into a
    list filter, and only resources whose mark is exactly *run_id* are deleted.

    Raises:
        UsageError: *run_id* is not a run id; nothing was looked at.
        CleanupError: after trying everything, listing what could not be deleted.
    """
    require_run_id("gce", run_id)
    c = session.make_clients(project, credentials, endpoint)
    return _collect(c, f'labels.{RUN_ID_LABEL} = "{run_id}"',
                    lambda marks: marks.get(RUN_ID_LABEL) == run_id)


def _collect(c: session.Clients, label_filter: str,
             chosen: Callable[[Mapping[str, str]], bool]) -> list[str]:
    """Delete the instances (every zone) whose labels, then the firewall rules whose description
    marks, are *chosen*; instances first, as a rule may still guard one."""
    sweep = Sweep()
    _sweep(c, label_filter, chosen, sweep)
    return sweep.done()


def _sweep(c: session.Clients, label_filter: str, chosen: Callable[[Mapping[str, str]], bool],
           sweep: Sweep) -> None:
    from google.cloud import compute_v1

    pages = retry.call(c.instances.aggregated_list, "instances.aggregatedList",
                       request=compute_v1.AggregatedListInstancesRequest(
                           project=c.project, filter=label_filter))
    for scope, listed in pages:
        for inst in listed.instances:
            if chosen(inst.labels):
                zone = scope.rsplit("/", 1)[-1]
                sweep.record(inst.name, resources.delete_instance(c, zone, inst.name))
    for rule in retry.call(c.firewalls.list, "firewalls.list", project=c.project):
        if chosen(resources.description_marks(rule.description)):
            sweep.record(rule.name, resources.delete_firewall(c, rule.name))


def _collect_images(c: session.Clients, chosen: Callable[[Mapping[str, str]], bool],
                    sweep: Sweep) -> None:
    """Private images publish made: labelled, in no family (a released image is in one)."""
    from google.cloud import compute_v1

    from . import publish

    for image in retry.call(c.images.list, "images.list", request=compute_v1.ListImagesRequest(
            project=c.project, filter=f"labels.{EXPIRES_LABEL}:*")):
        if image.family or not chosen(image.labels):
            continue
        sweep.record(f"image {image.name}", resources.delete_retrying(
            lambda name=image.name: publish.delete_image(c, name), 3))


def _collect_objects(c: session.Clients, credentials: Any, bucket: str,
                     chosen: Callable[[Mapping[str, str]], bool], sweep: Sweep) -> None:
    """The tarballs publish uploaded to *bucket* and an interruption left there."""
    from google.cloud import storage

    from . import publish

    if credentials is None:
        credentials, _ = session.default_credentials(c.project, session.PUBLISH_SCOPES)
    client = storage.Client(project=c.project, credentials=credentials)
    for blob in retry.call(lambda: list(client.list_blobs(bucket)), f"storage list gs://{bucket}"):
        if chosen(blob.metadata or {}):
            sweep.record(f"gs://{bucket}/{blob.name}", resources.delete_retrying(
                lambda name=blob.name: publish.delete_object(client, bucket, name), 3))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m debian_cloud_tests.providers.gce.gc",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--project", help="GCP project (default: from the credentials)")
    args = parser.parse_args(argv)
    return guarded(lambda: print_deleted(collect_garbage(datetime.now(UTC), args.project)))


if __name__ == "__main__":
    sys.exit(main())

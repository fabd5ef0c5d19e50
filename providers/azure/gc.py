"""Collect what crashed runs left behind on Azure: every resource group whose ``dct-expires``
tag is in the past is deleted as a whole (groups without the tag are never looked at); so are the
managed images, gallery image versions and VHD blobs an interrupted (or never released)
``publish`` left elsewhere, marked with a run id and an expiry in the past (a released one has no
expiry).  Blobs are looked at when a storage account
is configured (see :mod:`.storage`).

``python -m debian_cloud_tests.providers.azure.gc`` (subscription from AZURE_SUBSCRIPTION_ID).
A killed run's guard (or local gc) deletes that run's groups at once through :func:`collect_run`,
with the subscription and endpoint its run dir recorded.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from debian_cloud_tests import expiry
from debian_cloud_tests import sweep as sweep_mod
from debian_cloud_tests.errors import guarded
from debian_cloud_tests.gc import print_deleted
from debian_cloud_tests.rundir import require_run_id
from debian_cloud_tests.sweep import Sweep

from . import errors, session, storage
from .machine import delete_group
from .provider import EXPIRES_TAG, RUN_ID_TAG, location_key


def collect_garbage(now: datetime, credential: Any = None, subscription: str | None = None,
                    region: str | None = None, container: Any = None, **client_kwargs: Any) -> list[str]:
    """Delete expired resource groups, then the expired gallery image versions, images and VHD
    blobs of publications (in location *region* only, when given; blobs from *container*, else the
    configured one, if any); returns their names.

    Raises:
        CleanupError: after trying everything, listing what could not be deleted.
    """
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    c = session.make_clients(credential, subscription, **client_kwargs)

    def in_region(location: object) -> bool:
        return not region or location_key(location) == location_key(region)

    def expired(group: Any) -> bool:
        return in_region(group.location) and expiry.expired((group.tags or {}).get(EXPIRES_TAG), now)

    sweep = Sweep()
    _sweep_groups(c, f"tagName eq '{EXPIRES_TAG}'", expired, sweep)
    _sweep_versions(c, now, in_region, sweep)
    _sweep_images(c, now, in_region, sweep)
    _sweep_blobs(c, now, container, sweep)
    return sweep.done()


def _sweep_images(c: Any, now: datetime, in_region: Callable[[object], bool], sweep: Sweep) -> None:
    """Managed images a publish made (a run id) whose expiry passed, in groups not the run's."""
    images = errors.call(lambda: list(c.compute.images.list()), "images.list")
    for image in images:
        tags = image.tags or {}
        if tags.get(RUN_ID_TAG) and in_region(image.location) and \
                expiry.expired(tags.get(EXPIRES_TAG), now):
            group = str(image.id).split("/")[4]
            sweep.record(f"image {image.name}", sweep_mod.delete(
                lambda g=group, n=image.name: errors.operation(
                    c.compute.images.begin_delete, "images.delete", g, n),
                gone=lambda exc: "NotFound" in exc.message, sleep=errors.sleep))


def _sweep_versions(c: Any, now: datetime, in_region: Callable[[object], bool],
                    sweep: Sweep) -> None:
    """Gallery image versions a publish made (a run id) whose expiry passed, in every gallery of
    the subscription."""
    compute = c.compute
    galleries = errors.call(lambda: list(compute.galleries.list()), "galleries.list")
    for gallery in galleries:
        group, name = str(gallery.id).split("/")[4], str(gallery.name)
        definitions = errors.call(lambda g=group, n=name: list(
            compute.gallery_images.list_by_gallery(g, n)), "gallery_images.list")
        for definition in definitions:
            where = (group, name, str(definition.name))
            versions = errors.call(
                lambda w=where: list(
                    compute.gallery_image_versions.list_by_gallery_image(*w)),
                "gallery_image_versions.list")
            for version in versions:
                tags = version.tags or {}
                if tags.get(RUN_ID_TAG) and in_region(version.location) and \
                        expiry.expired(tags.get(EXPIRES_TAG), now):
                    sweep.record(f"gallery image version {'/'.join(where[1:])}/{version.name}",
                                 sweep_mod.delete(
                        lambda w=where, v=version.name: errors.operation(
                            compute.gallery_image_versions.begin_delete,
                            "gallery_image_versions.delete", *w, v, timeout=3600),
                        gone=lambda exc: "NotFound" in exc.message, sleep=errors.sleep))


def _sweep_blobs(c: Any, now: datetime, container: Any, sweep: Sweep) -> None:
    """VHD blobs a publish uploaded (a run id) whose expiry passed."""
    if container is None:
        if not storage.configured():
            return
        container = storage.container_client(c.credential)
    blobs = storage.call(lambda: list(container.list_blobs(include=["metadata"])), "list blobs")
    for blob in blobs:
        meta = blob.metadata or {}
        if meta.get(storage.RUN_ID_META) and expiry.expired(meta.get(storage.EXPIRES_META), now):
            sweep.record(f"blob {blob.name}", sweep_mod.delete(
                lambda n=blob.name: storage.call(storage.or_none(container.delete_blob),
                                                 "delete blob", n),
                gone=lambda exc: False, sleep=errors.sleep))


def collect_run(run_id: str, subscription: str | None = None, endpoint: str | None = None,
                credential: Any = None, **client_kwargs: Any) -> list[str]:
    """Delete every resource group of one run as a whole, expired or not: the run is known to be
    dead (its guard saw it end without cleaning up); returns their names.

    *run_id* must be one rundir.new_run_id makes, checked before any request: it goes into the
    list filter, and only groups whose ``dct-run-id`` tag is exactly *run_id* are deleted.
    *endpoint* is the Resource Manager the run used (None: ``DCT_AZURE_ARM_ENDPOINT`` or the
    public one); the credential comes from the environment, as the run's did.

    Raises:
        UsageError: *run_id* is not a run id; nothing was looked at.
        CleanupError: after trying every group, listing what could not be deleted.
    """
    require_run_id("azure", run_id)
    if endpoint:
        client_kwargs.setdefault("base_url", endpoint)
    c = session.make_clients(credential, subscription, **client_kwargs)
    return _delete_groups(c, f"tagName eq '{RUN_ID_TAG}' and tagValue eq '{run_id}'",
                          lambda group: (group.tags or {}).get(RUN_ID_TAG) == run_id)


def _delete_groups(c: Any, listing: str, wanted: Callable[[Any], bool]) -> list[str]:
    """Delete the groups the *listing* filter returns that are *wanted* (checked here: a filter
    is the cloud's reading, not ours); returns their names."""
    sweep = Sweep()
    _sweep_groups(c, listing, wanted, sweep)
    return sweep.done()


def _sweep_groups(c: Any, listing: str, wanted: Callable[[Any], bool], sweep: Sweep) -> None:
    groups = errors.call(lambda: list(c.resource.resource_groups.list(filter=listing)),
                         "resource_groups.list")
    for group in filter(wanted, groups):
        sweep.record(group.name, delete_group(c, group.name))


def main() -> int:
    return guarded(lambda: print_deleted(collect_garbage(datetime.now(UTC))))


if __name__ == "__main__":
    sys.exit(main())

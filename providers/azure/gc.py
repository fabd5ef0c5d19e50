"""Collect what crashed runs left behind on Azure: every resource group whose ``dct-expires``
tag is in the past is deleted as a whole (groups without the tag are never looked at).

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
from debian_cloud_tests.errors import guarded
from debian_cloud_tests.gc import print_deleted
from debian_cloud_tests.rundir import require_run_id
from debian_cloud_tests.sweep import Sweep

from . import errors, session
from .machine import delete_group
from .provider import EXPIRES_TAG, RUN_ID_TAG


def collect_garbage(now: datetime, credential: Any = None, subscription: str | None = None,
                    region: str | None = None, **client_kwargs: Any) -> list[str]:
    """Delete expired resource groups (in location *region* only, when given); returns their names.

    Raises:
        CleanupError: after trying every group, listing what could not be deleted.
    """
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    c = session.make_clients(credential, subscription, **client_kwargs)

    def expired(group: Any) -> bool:
        in_region = not region or str(group.location).lower() == region.lower()
        return in_region and expiry.expired((group.tags or {}).get(EXPIRES_TAG), now)

    return _delete_groups(c, f"tagName eq '{EXPIRES_TAG}'", expired)


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
    groups = errors.call(lambda: list(c.resource.resource_groups.list(filter=listing)),
                         "resource_groups.list")
    sweep = Sweep()
    for group in filter(wanted, groups):
        sweep.record(group.name, delete_group(c, group.name))
    return sweep.done()


def main() -> int:
    return guarded(lambda: print_deleted(collect_garbage(datetime.now(UTC))))


if __name__ == "__main__":
    sys.exit(main())

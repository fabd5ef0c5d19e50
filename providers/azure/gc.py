"""Collect what crashed runs left behind on Azure: every resource group whose ``dct-expires``
tag is in the past is deleted as a whole (groups without the tag are never looked at).

``python -m debian_cloud_tests.providers.azure.gc`` (subscription from AZURE_SUBSCRIPTION_ID).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

from debian_cloud_tests.errors import guarded, swept
from debian_cloud_tests.gc import print_deleted

from . import errors, session
from .machine import delete_group
from .provider import EXPIRES_TAG, parse_expiry


def collect_garbage(now: datetime, credential: Any = None, subscription: str | None = None,
                    region: str | None = None, **client_kwargs: Any) -> list[str]:
    """Delete expired resource groups (in location *region* only, when given); returns their names.

    Raises:
        CleanupError: after trying every group, listing what could not be deleted.
    """
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    c = session.make_clients(credential, subscription, **client_kwargs)
    groups = errors.call(lambda: list(c.resource.resource_groups.list(
        filter=f"tagName eq '{EXPIRES_TAG}'")), "resource_groups.list")
    deleted: list[str] = []
    failures: list[BaseException] = []
    for group in groups:
        when = parse_expiry((group.tags or {}).get(EXPIRES_TAG, ""))
        if region and str(group.location).lower() != region.lower():
            continue
        if when is not None and when < now:
            failed = delete_group(c, group.name)
            failures += failed
            deleted += [] if failed else [group.name]
    return swept(deleted, failures)


def main() -> int:
    return guarded(lambda: print_deleted(collect_garbage(datetime.now(UTC))))


if __name__ == "__main__":
    sys.exit(main())

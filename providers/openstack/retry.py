"""Calling OpenStack with retries: backoff with jitter where the cloud says "later" (429, 503,
other 5xx, a refused connection), at least as long as its ``Retry-After`` asks; everything else
fails at once with a typed error.  The SDK's own retries stay off (keystoneauth's default).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from debian_cloud_tests import backoff

from .errors import retry_after, retryable, translate

T = TypeVar("T")

#: replaced by tests, to record delays instead of waiting
sleep: Callable[[float], None] = time.sleep


@contextmanager
def sdk_quiet() -> Iterator[None]:
    """The SDK warns about its own deprecated internals on nearly every call (hundreds of
    RemovedInSDK50Warning and RemovedInSDK60Warning a run), nothing a user of this tool can act
    on: they are kept out of the user's warnings summary."""
    from openstack.warnings import RemovedInSDK50Warning, RemovedInSDK60Warning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RemovedInSDK50Warning)
        warnings.simplefilter("ignore", RemovedInSDK60Warning)
        yield


def call(fn: Callable[..., T], action: str, *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``, retried while retryable; raises a typed DCTError otherwise."""
    from keystoneauth1.exceptions import ClientException
    from openstack.exceptions import SDKException

    with sdk_quiet():
        return backoff.call(fn, action, *args, catch=(SDKException, ClientException),
                            classify=_failure, translate=translate, sleep=sleep, **kwargs)


def _failure(exc: BaseException) -> backoff.Failure:
    cause = f"{type(exc).__name__} {getattr(exc, 'status_code', '') or ''}".strip()
    return backoff.Failure(retryable(exc), cause, retry_after(exc))


def find(fn: Callable[..., T], action: str, name_or_id: str) -> T | None:
    """A ``find_*`` proxy call by name or id: the resource, or None where there is none."""
    from .errors import OpenStackError

    try:
        return call(fn, action, name_or_id, ignore_missing=False)
    except OpenStackError as exc:
        if exc.status == 404:
            return None
        raise

"""Calling EC2 with retries: exponential backoff with jitter, for what AWS says is retryable.

Throttling and transient faults are retried quickly; a lack of capacity is retried slowly (it
comes back in minutes, not seconds) and only where the caller asks for it; everything else fails
at once with a typed error.  The SDK's own retries are switched off (see :mod:`session`) so that
this module is the one policy, and its sleeps can be observed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from debian_cloud_tests import backoff
from debian_cloud_tests.backoff import API, Backoff

from .errors import CAPACITY, THROTTLING, TRANSIENT, error_code, translate

T = TypeVar("T")

#: replaced by tests, to record delays instead of waiting
sleep: Callable[[float], None] = time.sleep


CAPACITY_WAIT = Backoff(attempts=4, base=15.0, cap=60.0)


def retryable(exc: BaseException, capacity: bool = False) -> bool:
    """True when AWS documents the failure as worth retrying (capacity only if asked)."""
    from botocore import exceptions as bex

    if isinstance(exc, bex.EndpointConnectionError | bex.ConnectTimeoutError | bex.ReadTimeoutError
                  | bex.ConnectionClosedError):
        return True
    code = error_code(exc)
    return code in THROTTLING or code in TRANSIENT or (capacity and code in CAPACITY)


def call(fn: Callable[..., T], action: str, *, capacity: bool = False, **kwargs: Any) -> T:
    """``fn(**kwargs)``, retried with backoff while retryable; raises a typed DCTError otherwise."""
    from botocore.exceptions import BotoCoreError, ClientError

    def failure(exc: BaseException) -> backoff.Failure:
        code = error_code(exc)
        slow = capacity and code in CAPACITY
        return backoff.Failure(retryable(exc, capacity), code, policy=CAPACITY_WAIT if slow else API)

    return backoff.call(fn, action, catch=(ClientError, BotoCoreError), classify=failure,
                        translate=translate, sleep=sleep, **kwargs)

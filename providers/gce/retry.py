"""Calling GCE with retries: exponential backoff with jitter for what Google says is transient.

HTTP 429, 5xx and the ``rateLimitExceeded`` reasons are retried, never sooner than the
response's ``Retry-After`` asks (up to a bound); everything else fails at once with a typed
error.  Operations (GCE's answer to every change) are polled here too, on an operations client
that talks to the same endpoint as the client that started them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from debian_cloud_tests import backoff
from debian_cloud_tests.errors import ProviderError

from .errors import RETRY_STATUS, THROTTLING, classify, reason_of, retry_after, status_of, translate

T = TypeVar("T")

#: replaced by tests, to record delays instead of waiting
sleep: Callable[[float], None] = time.sleep



def retryable(exc: BaseException) -> bool:
    from google.api_core import exceptions as api_exc
    from google.auth import exceptions as auth_exc

    if isinstance(exc, auth_exc.TransportError | ConnectionError):
        return True
    if not isinstance(exc, api_exc.GoogleAPICallError):
        return False
    return status_of(exc) in RETRY_STATUS or reason_of(exc) in THROTTLING


def call(fn: Callable[..., T], action: str, **kwargs: Any) -> T:
    """``fn(**kwargs)``, retried with backoff while retryable; raises a typed DCTError otherwise."""
    from google.api_core.exceptions import GoogleAPICallError
    from google.auth.exceptions import GoogleAuthError

    return backoff.call(fn, action, catch=(GoogleAPICallError, GoogleAuthError, ConnectionError),
                        classify=_failure, translate=translate, sleep=sleep, **kwargs)


def _failure(exc: BaseException) -> backoff.Failure:
    return backoff.Failure(retryable(exc), f"{status_of(exc)} {reason_of(exc)}".strip(),
                           retry_after(exc))


def wait_operation(get: Callable[[], Any], action: str, timeout: float = 300.0) -> Any:
    """Poll an operation (``get`` returns it) until DONE; its error becomes a typed error."""
    deadline = time.monotonic() + timeout
    delay = 0.5
    while True:
        op = call(get, f"{action} (operation)")
        if str(op.status).endswith("DONE") or op.status == 2104194:
            errors = list(op.error.errors) if op.error else []
            if errors:
                first = errors[0]
                raise classify(first.code, op.http_error_status_code, first.message, action)
            return op
        if time.monotonic() >= deadline:
            raise ProviderError(f"gce: {action}: operation {op.name} not done after {timeout:.0f}s")
        sleep(min(delay, max(deadline - time.monotonic(), 0.0)))
        delay = min(delay * 2, 10.0)

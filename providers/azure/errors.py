"""The azure provider's errors, how an Azure SDK error becomes one, and the retry policy.

ARM reports failures as an HTTP status and an error ``code``; the code decides: throttling (429)
and transient faults are retried with exponential backoff, quotas and refused credentials fail at
once in one line naming what to do.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

from debian_cloud_tests import backoff, interrupts
from debian_cloud_tests import errors as base
from debian_cloud_tests.errors import DCTError

T = TypeVar("T")
THROTTLING = frozenset({"TooManyRequests", "RetryableError", "ServerBusy"})
QUOTA = frozenset({"QuotaExceeded", "OperationNotAllowed", "PublicIPCountLimitReached"})
CAPACITY = frozenset({"SkuNotAvailable", "AllocationFailed", "ZonalAllocationFailed"})
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
WHAT_TO_SET = ("set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (a service "
               "principal), or run `az login`")

#: replaced by tests, to record delays instead of waiting
sleep: Callable[[float], None] = time.sleep


class AzureError(base.CloudError):
    """ARM refused or failed a call; *code* is ARM's error code."""

    code: str


class QuotaError(AzureError, base.QuotaError):
    pass


class ThrottledError(AzureError, base.ThrottledError):
    pass


class CredentialsError(base.CredentialsError):
    pass


def translate(exc: BaseException, action: str) -> DCTError:
    from azure.core import exceptions as az

    if isinstance(exc, az.ClientAuthenticationError) and not getattr(exc, "status_code", None):
        # no token at all; ARM refusing one (401 with a status) is told below, naming the call
        return CredentialsError(f"azure: no usable credentials ({_short(exc)}); {WHAT_TO_SET}")
    status = getattr(exc, "status_code", None) or 0
    error = getattr(exc, "error", None)
    code = str(getattr(error, "code", "") or "")
    msg = _short(getattr(error, "message", "") or exc)
    what = f"{code or status}: {msg}"
    if code in QUOTA:
        return QuotaError(f"azure: {action}: a subscription quota is reached ({what}); delete "
                          "what you no longer need or ask for a higher quota", code)
    if code in CAPACITY:
        return AzureError(f"azure: {action}: no capacity ({what}); choose another --instance-type "
                          "or --region", code)
    if code in THROTTLING or status == 429:
        return ThrottledError(f"azure: {action}: still throttled after retrying ({what})", code)
    if status in (401, 403) or code in ("AuthorizationFailed", "InvalidAuthenticationToken"):
        return CredentialsError(f"azure: {action} was refused ({what}); {WHAT_TO_SET}, with the "
                                "Contributor role on the subscription")
    return AzureError(f"azure: {action} failed ({what})", code)


def _short(text: object) -> str:
    return re.sub(r"\s+", " ", str(text)).strip()[:300]


def is_not_found(exc: BaseException) -> bool:
    return getattr(exc, "status_code", None) == 404


def retry_after(exc: BaseException) -> float | None:
    """The seconds ARM's ``Retry-After`` (or ``retry-after-ms``) asks for, None without one."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    for name, scale in (("retry-after-ms", 1000.0), ("x-ms-retry-after-ms", 1000.0)):
        asked = backoff.retry_after(headers.get(name))
        if asked is not None:
            return asked / scale
    return backoff.retry_after(headers.get("Retry-After"))


def call(fn: Callable[..., T], action: str, *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` with backoff on throttling and transient faults, never shorter
    than ARM's ``Retry-After`` (bounded): retrying sooner only earns another 429.

    This is the only retry: the clients are made with the SDK's own turned off (session.py), so
    every attempt is logged and counted here.  A connection that failed is retried as well, as the
    SDK did (ARM's PUT and DELETE are idempotent)."""
    from azure.core.exceptions import AzureError as SdkError

    return backoff.call(fn, action, *args, catch=(SdkError,), classify=_failure,
                        translate=translate, sleep=sleep, **kwargs)


def _retryable(exc: BaseException) -> bool:
    """A throttled or transient answer, or a connection that failed."""
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

    status = getattr(exc, "status_code", None) or 0
    code = str(getattr(getattr(exc, "error", None), "code", "") or "")
    transient = status in RETRY_STATUS or code in THROTTLING
    return ((isinstance(exc, HttpResponseError) and transient)
            or isinstance(exc, ServiceRequestError | ServiceResponseError))


def _failure(exc: BaseException) -> backoff.Failure:
    status = getattr(exc, "status_code", None) or 0
    code = str(getattr(getattr(exc, "error", None), "code", "") or "")
    why = f"{status} {code}".strip() if status or code else type(exc).__name__
    return backoff.Failure(_retryable(exc), why, retry_after(exc))


def operation(fn: Callable[..., Any], action: str, *args: Any, timeout: float = 600.0,
              interruptible: bool = False) -> Any:
    """Start a long-running operation and wait for its result within *timeout*; an
    *interruptible* wait (a launch's, never a clean-up's) stops when the run is asked to stop.

    The SDK's pollers no longer retry a status request that met a transient fault (its retries
    are off), and a poller that failed cannot go on: the operation is started again, which ARM's
    PUT, DELETE and restart allow, and the retry is logged like any other."""
    from azure.core.exceptions import AzureError as SdkError

    return backoff.call(lambda: _wait(call(fn, action, *args), action, timeout, interruptible), action,
                        catch=(SdkError,), classify=_failure, translate=translate, sleep=sleep)


def _wait(poller: Any, action: str, timeout: float, interruptible: bool) -> Any:
    deadline = time.monotonic() + timeout
    while not poller.done():
        if interruptible:
            interrupts.check()
        if time.monotonic() >= deadline:
            raise AzureError(f"azure: {action}: still {poller.status()} after {timeout:.0f}s")
        poller.wait(min(1.0, max(deadline - time.monotonic(), 0.01)))
    return poller.result()

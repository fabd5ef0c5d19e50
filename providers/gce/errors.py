"""The gce provider's errors, and how a Google API error becomes one.

GCE answers a refused call with an HTTP status and a ``reason`` (``rateLimitExceeded``,
``quotaExceeded``…), and a failed operation with an error ``code`` (``QUOTA_EXCEEDED``,
``ZONE_RESOURCE_POOL_EXHAUSTED``…): those, never the message text, decide what happens.
"""

from __future__ import annotations

import re

from debian_cloud_tests import errors as base
from debian_cloud_tests.errors import DCTError

THROTTLING = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "RATE_LIMIT_EXCEEDED"})
QUOTA = frozenset({"quotaExceeded", "QUOTA_EXCEEDED", "limitExceeded"})
CAPACITY = frozenset({"ZONE_RESOURCE_POOL_EXHAUSTED", "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
                      "resourcePoolExhausted"})
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})

WHAT_TO_SET = ("set GOOGLE_APPLICATION_CREDENTIALS to a service account key file, or run "
               "`gcloud auth application-default login`")


class GceError(base.CloudError):
    """GCE refused or failed a call; its code is GCE's reason or operation error code."""

    @property
    def reason(self) -> str:
        return str(self.code)


class QuotaError(GceError, base.QuotaError):
    pass


class CapacityError(GceError, base.CapacityError):
    pass


class ThrottledError(GceError, base.ThrottledError):
    pass


class CredentialsError(base.CredentialsError):
    pass


def status_of(exc: BaseException) -> int:
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) else 0


def reason_of(exc: BaseException) -> str:
    """GCE's reason from the error body (the first one), else the ErrorInfo reason."""
    for err in getattr(exc, "errors", None) or []:
        if isinstance(err, dict) and err.get("reason"):
            return str(err["reason"])
    return str(getattr(exc, "reason", "") or "")


def retry_after(exc: BaseException) -> float | None:
    """The seconds the response's ``Retry-After`` asks for (None without one)."""
    from debian_cloud_tests.backoff import retry_after as parse

    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    return parse(headers.get("Retry-After"))


def _message(exc: object) -> str:
    text = str(getattr(exc, "message", "") or exc)
    return re.sub(r"\s+", " ", text).strip().rstrip(".")[:300]


def classify(reason: str, status: int, message: str, action: str) -> DCTError:
    """The typed error for a refused call or a failed operation."""
    what = f"{reason or status}: {message}"
    if reason in QUOTA:
        return QuotaError(f"gce: {action}: a project quota is reached ({what}); delete instances "
                          "you no longer need or ask for a higher quota", reason)
    if reason in CAPACITY:
        return CapacityError(f"gce: {action}: no capacity in the zone ({what}); retry later, or "
                             "choose another --zone or --instance-type", reason)
    if reason in THROTTLING or status == 429:
        return ThrottledError(f"gce: {action}: still rate limited after retrying ({what}); retry "
                              "later", reason)
    if status == 401:
        return CredentialsError(f"gce: the credentials were refused ({what}); {WHAT_TO_SET}")
    if status == 403:
        return CredentialsError(f"gce: {action} is not allowed with these credentials ({what}); "
                                "grant roles/compute.instanceAdmin.v1 and roles/compute.securityAdmin "
                                "or use other credentials")
    return GceError(f"gce: {action} failed ({what})", reason)


def translate(exc: BaseException, action: str) -> DCTError:
    """The typed error for a google.api_core / google.auth exception raised by *action*."""
    from google.auth import exceptions as auth_exc

    if isinstance(exc, auth_exc.DefaultCredentialsError):
        return CredentialsError(f"gce: no usable credentials found; {WHAT_TO_SET}")
    if isinstance(exc, auth_exc.RefreshError | auth_exc.OAuthError):  # OAuthError: from an STS exchange
        # the first argument is the endpoint's error; the second its whole response body
        said = exc.args[0] if exc.args and isinstance(exc.args[0], str) else exc
        return CredentialsError(f"gce: the credentials were refused ({_message(said)}); {WHAT_TO_SET}")
    if isinstance(exc, auth_exc.TransportError | ConnectionError | OSError):
        return GceError(f"gce: {action}: cannot reach the Compute Engine API ({_message(exc)})")
    return classify(reason_of(exc), status_of(exc), _message(exc), action)

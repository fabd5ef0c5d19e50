"""The openstack provider's errors, and how an openstacksdk / keystoneauth error becomes one.

OpenStack services answer with an HTTP status and, at best, a type (Neutron's ``OverQuota``);
Nova says "quota exceeded" only in its message (HTTP 403, or 413 from older releases, which also
used 413 with ``Retry-After`` for rate limits).  Status, type and ``Retry-After`` decide first;
the message is read only to tell Nova's quota from another refusal.
"""

from __future__ import annotations

import re

from debian_cloud_tests import backoff
from debian_cloud_tests import errors as base
from debian_cloud_tests.errors import DCTError, UsageError

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_QUOTA = re.compile(r"quota|over ?limit|exceeded", re.I)

WHAT_TO_SET = ("set OS_CLOUD (or --os-cloud) to a cloud in clouds.yaml (OS_CLIENT_CONFIG_FILE, "
               "./clouds.yaml, ~/.config/openstack/clouds.yaml), or the OS_AUTH_URL, OS_USERNAME, "
               "OS_PASSWORD and OS_PROJECT_NAME variables")


class OpenStackError(base.CloudError):
    """The cloud refused or failed a call; its code is the HTTP status (0 without one)."""

    def __init__(self, message: str, status: int = 0, *, detail: str = "") -> None:
        super().__init__(message, status, detail=detail)

    @property
    def status(self) -> int:
        return int(self.code or 0)


class QuotaError(OpenStackError, base.QuotaError):
    pass


class ThrottledError(OpenStackError, base.ThrottledError):
    pass


class CredentialsError(base.CredentialsError):
    pass


def status_of(exc: BaseException) -> int:
    """The HTTP status; a find_* that found nothing raises without a response, and counts as 404."""
    code = getattr(exc, "status_code", None) or getattr(exc, "http_status", None)
    if not isinstance(code, int) and type(exc).__name__ in ("NotFoundException", "ResourceNotFound"):
        return 404
    return code if isinstance(code, int) else 0


def retry_after(exc: BaseException) -> float | None:
    """The seconds a ``Retry-After`` header asks for, in seconds or as an HTTP date (None
    without one)."""
    response = getattr(exc, "response", None)
    return backoff.retry_after(response.headers.get("Retry-After") if response is not None else None)


def _kind(exc: BaseException) -> str:
    """Neutron's error type (``OverQuota``, ``SecurityGroupInUse``…), else ""."""
    response = getattr(exc, "response", None)
    try:
        body = response.json() if response is not None else {}
    except ValueError:
        return ""
    inner = body.get("NeutronError") if isinstance(body, dict) else None
    return str(inner.get("type") or "") if isinstance(inner, dict) else ""


def _message(exc: BaseException) -> str:
    text = str(getattr(exc, "details", None) or getattr(exc, "message", None) or exc)
    return re.sub(r"\s+", " ", text).strip().rstrip(".")[:300]


def is_quota(exc: BaseException) -> bool:
    status = status_of(exc)
    if _kind(exc) == "OverQuota":
        return True
    if status == 413 and retry_after(exc) is None:
        return True
    return status in (403, 413) and bool(_QUOTA.search(_message(exc)))


def retryable(exc: BaseException) -> bool:
    """Throttling, 5xx and a refused connection are worth another try; quota never is."""
    from keystoneauth1 import exceptions as ks_exc

    if isinstance(exc, ks_exc.ConnectFailure | ks_exc.ConnectTimeout):
        return True
    if is_quota(exc):
        return False
    status = status_of(exc)
    return status in RETRY_STATUS or (status == 413 and retry_after(exc) is not None)


def is_gone(exc: BaseException) -> bool:
    return status_of(exc) == 404 or (isinstance(exc, OpenStackError) and exc.status == 404)


def translate(exc: BaseException, action: str) -> DCTError:
    """The typed error for an exception raised by *action*; never quotes a credential."""
    from keystoneauth1 import exceptions as ks_exc
    from openstack import exceptions as os_exc

    if type(exc) is os_exc.SDKException and isinstance(exc.__context__, ks_exc.ClientException):
        exc = exc.__context__  # Connection.authorize() re-raises keystoneauth's error bare
    status, message = status_of(exc), _message(exc)
    if isinstance(exc, ks_exc.MissingRequiredOptions | ks_exc.NoMatchingPlugin):
        return CredentialsError(f"openstack: no cloud configured ({message}); {WHAT_TO_SET}")
    if isinstance(exc, os_exc.ConfigException):
        return CredentialsError(f"openstack: {message}; {WHAT_TO_SET}")
    if isinstance(exc, os_exc.DuplicateResource):
        return UsageError(f"openstack: {action}: {message}; give the id instead of the name")
    if isinstance(exc, ks_exc.Unauthorized) or status == 401:
        return CredentialsError(f"openstack: the credentials were refused by Keystone ({message}); "
                                f"check the cloud's auth in clouds.yaml or the OS_* variables")
    if isinstance(exc, ks_exc.EndpointNotFound | os_exc.EndpointNotFound):
        return UsageError(f"openstack: {action}: the cloud's catalog has no such service in this "
                          f"region ({message}); check --region / region_name")
    if isinstance(exc, ks_exc.ConnectFailure | ks_exc.ConnectTimeout | ks_exc.DiscoveryFailure):
        return OpenStackError(f"openstack: {action}: cannot reach the cloud ({message})")
    what = f"HTTP {status}: {message}" if status else message
    if is_quota(exc):
        return QuotaError(f"openstack: {action}: a project quota is reached ({what}); delete "
                          "servers you no longer need or ask for a higher quota", status)
    if status == 429 or status == 413:
        return ThrottledError(f"openstack: {action}: still rate limited after retrying ({what}); "
                              "retry later", status)
    if status == 403:
        return CredentialsError(f"openstack: {action} is not allowed with these credentials ({what}); "
                                "use a user with the member role in the project")
    return OpenStackError(f"openstack: {action} failed ({what})", status)

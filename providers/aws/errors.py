"""The AWS provider's errors, and how an SDK error becomes one.

AWS reports every failure as an error code; the code, never the message, decides whether a call
is retried, is the user's to fix (credentials, quotas) or is the cloud's trouble.  Every message
is one line naming the provider and what to do; no credential is ever part of one.
"""

from __future__ import annotations

import re

from debian_cloud_tests import errors as base
from debian_cloud_tests.errors import DCTError, UsageError

THROTTLING = frozenset({
    "RequestLimitExceeded", "Throttling", "ThrottlingException", "RequestThrottled",
    "RequestThrottledException", "TooManyRequestsException", "SlowDown", "PriorRequestNotComplete",
})
TRANSIENT = frozenset({
    "InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable", "RequestTimeout",
    "RequestTimeoutException", "EC2ThrottledException",
})
CAPACITY = frozenset({
    "InsufficientInstanceCapacity", "InsufficientHostCapacity", "InsufficientCapacity",
    "InsufficientReservedInstanceCapacity",
})
QUOTA = frozenset({
    "InstanceLimitExceeded", "VcpuLimitExceeded", "MaxSpotInstanceCountExceeded",
    "SecurityGroupLimitExceeded", "RulesPerSecurityGroupLimitExceeded", "ResourceLimitExceeded",
})
CREDENTIALS = frozenset({
    "AuthFailure", "UnrecognizedClientException", "InvalidClientTokenId", "SignatureDoesNotMatch",
    "ExpiredToken", "ExpiredTokenException", "RequestExpired", "IncompleteSignature",
    "MissingAuthenticationToken", "InvalidAccessKeyId",
})
PERMISSION = frozenset({"UnauthorizedOperation", "AccessDenied", "AccessDeniedException", "OptInRequired"})

WHAT_TO_SET = ("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for "
               "temporary credentials), or AWS_PROFILE naming a profile in ~/.aws/config")


class AwsError(base.CloudError):
    """EC2 refused or failed a call; *code* is AWS's error code."""

    code: str


class CapacityError(AwsError, base.CapacityError):
    pass


class QuotaError(AwsError, base.QuotaError):
    pass


class ThrottledError(AwsError, base.ThrottledError):
    pass


class CredentialsError(base.CredentialsError):
    pass


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _message(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    text = str(response.get("Error", {}).get("Message", "")) or str(exc)
    # UnauthorizedOperation carries a long encoded blob that helps nobody reading a log line.
    text = text.split("Encoded authorization failure message")[0]
    return re.sub(r"\s+", " ", text).strip().rstrip(".")[:300]


def translate(exc: BaseException, action: str) -> DCTError:
    """The typed error for an SDK exception raised while doing *action* (e.g. 'run_instances')."""
    from botocore import exceptions as bex

    if isinstance(exc, bex.NoCredentialsError | bex.PartialCredentialsError):
        return CredentialsError(f"aws: no usable credentials found; {WHAT_TO_SET}")
    if isinstance(exc, bex.ProfileNotFound):
        return CredentialsError(f"aws: {_message(exc)}; {WHAT_TO_SET}")
    if isinstance(exc, bex.NoRegionError):
        return UsageError("aws: no region configured; give --region or set AWS_DEFAULT_REGION")
    if isinstance(exc, bex.EndpointConnectionError | bex.ConnectTimeoutError | bex.ReadTimeoutError
                  | bex.ConnectionClosedError):
        return AwsError(f"aws: {action}: cannot reach the EC2 endpoint ({_message(exc)})")
    code, msg = error_code(exc), _message(exc)
    if code in CREDENTIALS:
        return CredentialsError(f"aws: the credentials were refused ({code}: {msg}); {WHAT_TO_SET}",
                                code)
    if code in PERMISSION:
        return CredentialsError(f"aws: {action} is not allowed with these credentials ({code}: {msg}); "
                                f"grant ec2:{_pascal(action)} or use other credentials", code)
    if code in CAPACITY:
        return CapacityError(f"aws: {action}: no capacity ({code}: {msg}); retry later, or choose "
                             "another --instance-type or a --subnet in another availability zone", code)
    if code in QUOTA:
        return QuotaError(f"aws: {action}: an account limit is reached ({code}: {msg}); terminate "
                          "instances you no longer need or ask AWS for a higher quota", code)
    if code in THROTTLING:
        return ThrottledError(f"aws: {action}: still throttled after retrying ({code}: {msg}); "
                              "too many calls in this account and region, retry later", code)
    return AwsError(f"aws: {action} failed ({code or type(exc).__name__}: {msg})", code)


def _pascal(action: str) -> str:
    return "".join(part.capitalize() for part in action.split("_"))

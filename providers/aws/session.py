"""The EC2 client: credentials and region come from boto3's standard chain, nothing else.

Environment, shared config files, SSO, instance roles: whatever the SDK finds is used, and
``AWS_ENDPOINT_URL`` is honoured as the SDK honours it.  What is missing is said in one line.
"""

from __future__ import annotations

import re
from typing import Any

from debian_cloud_tests import __version__
from debian_cloud_tests.errors import MissingDependencyError, UsageError

from .errors import WHAT_TO_SET, CredentialsError, translate

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")


def _boto3() -> Any:
    try:
        import boto3
    except ImportError:
        raise MissingDependencyError(
            "aws: the aws provider needs boto3: pip install 'debian-cloud-tests[aws]'") from None
    return boto3


def new_session(region: str | None) -> Any:
    """A boto3 session for *region* (or the configured one), with credentials checked to exist.

    Raises:
        CredentialsError: the standard chain found no credentials, or the profile is unknown.
        UsageError: no region anywhere, or a malformed one.
    """
    session, _ = _session_and_credentials(region)
    name = session.region_name
    if not name:
        raise UsageError("aws: no region: give --region, or set AWS_DEFAULT_REGION (or region in "
                         "~/.aws/config)")
    if not _REGION.match(name):
        raise UsageError(f"--region {name!r}: not an AWS region name (e.g. eu-west-1)")
    return session


def _session_and_credentials(region: str | None) -> tuple[Any, Any]:
    """The session and what boto3's chain found (not yet resolved into keys where deferred)."""
    boto3 = _boto3()
    from botocore.exceptions import BotoCoreError

    try:
        session = boto3.session.Session(region_name=region)
        credentials = session.get_credentials()
    except BotoCoreError as exc:
        raise translate(exc, "loading credentials") from None
    if credentials is None:
        raise CredentialsError(f"aws: no credentials found; {WHAT_TO_SET}")
    return session, credentials


def preflight(region: str | None) -> str:
    """Where the chain found credentials (its method: env, shared-credentials-file, sso…) and
    the region, without a call to AWS; no key is read out of the credentials.

    Raises:
        CredentialsError: the chain found nothing, naming what to set.
    """
    session, credentials = _session_and_credentials(region)
    name = session.region_name
    where = f"region {name}" if name else "no region (give --region or set AWS_DEFAULT_REGION)"
    profile = session.profile_name if session.profile_name != "default" else ""
    method = credentials.method + (f" (profile {profile})" if profile else "")
    return f"credentials from {method}; {where}"


def ec2_client(session: Any) -> Any:
    """An EC2 client whose retries are ours (see :mod:`retry`), with bounded timeouts."""
    from botocore.config import Config

    config = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=10,
                    read_timeout=60, user_agent_extra=f"debian-cloud-tests/{__version__}")
    return session.client("ec2", config=config)


def sdk_versions() -> dict[str, str]:
    boto3 = _boto3()
    import botocore

    return {"boto3_version": boto3.__version__, "botocore_version": botocore.__version__}

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
    boto3 = _boto3()
    from botocore.exceptions import BotoCoreError

    try:
        session = boto3.session.Session(region_name=region)
        credentials = session.get_credentials()
    except BotoCoreError as exc:
        raise translate(exc, "loading credentials") from None
    if credentials is None:
        raise CredentialsError(f"aws: no credentials found; {WHAT_TO_SET}")
    name = session.region_name
    if not name:
        raise UsageError("aws: no region: give --region, or set AWS_REGION (or region in ~/.aws/config)")
    if not _REGION.match(name):
        raise UsageError(f"--region {name!r}: not an AWS region name (e.g. eu-west-1)")
    return session


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

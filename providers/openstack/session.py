"""The connection: credentials, region and endpoints from openstacksdk's own configuration.

``--os-cloud`` (else ``OS_CLOUD``) names a cloud in clouds.yaml (``OS_CLIENT_CONFIG_FILE``,
``./clouds.yaml``, ``~/.config/openstack/clouds.yaml``, ``/etc/openstack/clouds.yaml``); without
a name the ``OS_*`` variables are used, as the ``openstack`` command does.  A token is fetched
at once, so a missing or refused credential is one line before anything is created.
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import urlsplit

from debian_cloud_tests import __version__
from debian_cloud_tests.errors import MissingDependencyError

from .errors import WHAT_TO_SET, CredentialsError, translate


def _sdk() -> Any:
    try:
        import openstack
    except ImportError:
        raise MissingDependencyError("openstack: the openstack provider needs openstacksdk: "
                                     "pip install 'debian-cloud-tests[openstack]'") from None
    return openstack


def cloud_arg(given: str | None = None) -> str | None:
    """The cloud's name in clouds.yaml: *given*, else ``OS_CLOUD``, else None (the ``OS_*``
    variables)."""
    return given or os.environ.get("OS_CLOUD") or None


def connect(cloud: str | None = None, region: str | None = None) -> Any:
    """An authenticated ``openstack.connection.Connection``.

    Raises:
        CredentialsError: no cloud configured, an unknown cloud name, or Keystone said no.
        OpenStackError: Keystone cannot be reached.
    """
    openstack = _sdk()
    from keystoneauth1.exceptions import ClientException
    from openstack.exceptions import SDKException

    from .retry import sdk_quiet

    name = cloud_arg(cloud)
    try:
        with sdk_quiet():
            conn = openstack.connect(cloud=name, region_name=region, app_name="debian-cloud-tests",
                                     app_version=__version__)
            conn.authorize()
    except (SDKException, ClientException) as exc:
        raise translate(exc, "authenticating") from None
    return conn


def preflight(cloud: str | None = None, region: str | None = None) -> str:
    """The cloud clouds.yaml or the ``OS_*`` variables describe, and where it authenticates;
    the configuration is read, Keystone is not asked, and no credential is quoted.

    Raises:
        CredentialsError: no cloud configured, or an unknown cloud name, naming what to set.
    """
    _sdk()
    from keystoneauth1.exceptions import ClientException
    from openstack.config import OpenStackConfig
    from openstack.exceptions import SDKException

    name = cloud or os.environ.get("OS_CLOUD") or None
    try:
        config = OpenStackConfig(app_name="debian-cloud-tests").get_one(cloud=name, region_name=region)
    except (SDKException, ClientException) as exc:
        raise translate(exc, "reading the configuration") from None
    auth_url = str((config.config.get("auth") or {}).get("auth_url") or "")
    if not auth_url:
        raise CredentialsError(f"openstack: no cloud configured (no auth_url); {WHAT_TO_SET}")
    host = urlsplit(auth_url).netloc.rpartition("@")[2] or auth_url
    where = f", region {config.region_name}" if config.region_name else ""
    return f"cloud {config.name} ({config.config.get('auth_type') or 'password'} auth at {host}{where})"


def cloud_name(conn: Any) -> str:
    return str(getattr(conn.config, "name", "") or "")


def sdk_versions() -> dict[str, str]:
    try:
        return {"openstacksdk_version": version("openstacksdk")}
    except PackageNotFoundError:
        return {}

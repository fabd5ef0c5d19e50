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

from debian_cloud_tests import __version__
from debian_cloud_tests.errors import MissingDependencyError

from .errors import translate


def _sdk() -> Any:
    try:
        import openstack
    except ImportError:
        raise MissingDependencyError("openstack: the openstack provider needs openstacksdk: "
                                     "pip install 'debian-cloud-tests[openstack]'") from None
    return openstack


def connect(cloud: str | None = None, region: str | None = None) -> Any:
    """An authenticated ``openstack.connection.Connection``.

    Raises:
        CredentialsError: no cloud configured, an unknown cloud name, or Keystone said no.
        OpenStackError: Keystone cannot be reached.
    """
    openstack = _sdk()
    from keystoneauth1.exceptions import ClientException
    from openstack.exceptions import SDKException

    name = cloud or os.environ.get("OS_CLOUD") or None
    try:
        conn = openstack.connect(cloud=name, region_name=region, app_name="debian-cloud-tests",
                                 app_version=__version__)
        conn.authorize()
    except (SDKException, ClientException) as exc:
        raise translate(exc, "authenticating") from None
    return conn


def cloud_name(conn: Any) -> str:
    return str(getattr(conn.config, "name", "") or "")


def sdk_versions() -> dict[str, str]:
    try:
        return {"openstacksdk_version": version("openstacksdk")}
    except PackageNotFoundError:
        return {}

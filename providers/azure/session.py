"""The Azure clients: credentials from azure-identity's standard chain (DefaultAzureCredential),
the subscription from ``AZURE_SUBSCRIPTION_ID``; ``DCT_AZURE_ARM_ENDPOINT`` points the clients
at another Resource Manager endpoint."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from debian_cloud_tests.errors import MissingDependencyError, UsageError

from .errors import WHAT_TO_SET, CredentialsError

SCOPE = "https://management.azure.com/.default"


@dataclass
class Clients:
    subscription: str
    resource: Any
    network: Any
    compute: Any


def make_clients(credential: Any = None, subscription: str | None = None,
                 **client_kwargs: Any) -> Clients:
    """Resource, network and compute clients; the credential is tried once before any use.

    Raises:
        CredentialsError: no credential in the chain, or it was refused, in one line.
    """
    try:
        from azure.mgmt.compute import ComputeManagementClient
        from azure.mgmt.network import NetworkManagementClient
        try:
            from azure.mgmt.resource.resources import ResourceManagementClient
        except ImportError:  # azure-mgmt-resource before 24
            from azure.mgmt.resource import ResourceManagementClient
    except ImportError:
        raise MissingDependencyError("azure: the azure provider needs the Azure SDK: pip install "
                                     "'debian-cloud-tests[azure]'") from None
    subscription = subscription or os.environ.get("AZURE_SUBSCRIPTION_ID")
    if not subscription:
        raise UsageError("azure: no subscription: set AZURE_SUBSCRIPTION_ID")
    if credential is None:
        from azure.core.exceptions import ClientAuthenticationError
        from azure.identity import DefaultAzureCredential

        try:
            credential = DefaultAzureCredential()
            credential.get_token(SCOPE)
        except (ClientAuthenticationError, ValueError):  # ValueError: malformed AZURE_* settings
            raise CredentialsError(f"azure: no usable credentials found; {WHAT_TO_SET}") from None
    endpoint = os.environ.get("DCT_AZURE_ARM_ENDPOINT")
    if endpoint:
        client_kwargs.setdefault("base_url", endpoint)
    return Clients(subscription, ResourceManagementClient(credential, subscription, **client_kwargs),
                   NetworkManagementClient(credential, subscription, **client_kwargs),
                   ComputeManagementClient(credential, subscription, **client_kwargs))

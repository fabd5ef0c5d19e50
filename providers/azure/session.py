"""The Azure clients: credentials from azure-identity's standard chain (DefaultAzureCredential),
the subscription from ``AZURE_SUBSCRIPTION_ID``; ``DCT_AZURE_ARM_ENDPOINT`` points the clients
at another Resource Manager endpoint."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from debian_cloud_tests.errors import MissingDependencyError, UsageError

from .errors import WHAT_TO_SET, CredentialsError

SCOPE = "https://management.azure.com/.default"


SDK_MISSING = "azure: the azure provider needs the Azure SDK: pip install 'debian-cloud-tests[azure]'"


@dataclass
class Clients:
    subscription: str
    resource: Any
    network: Any
    compute: Any
    #: what made the clients, for a compute client on another subscription (a shared gallery)
    credential: Any = None
    client_kwargs: dict[str, Any] = field(default_factory=dict)

    def compute_in(self, subscription: str) -> Any:
        """A compute client on *subscription*: this one's, or a new one with the same credential."""
        if subscription.lower() == self.subscription.lower():
            return self.compute
        from azure.mgmt.compute import ComputeManagementClient

        return ComputeManagementClient(self.credential, subscription, **self.client_kwargs)


def arm_endpoint(given: str | None = None) -> str | None:
    """The Resource Manager endpoint: *given*, else ``DCT_AZURE_ARM_ENDPOINT``, else None (the
    public one)."""
    return given or os.environ.get("DCT_AZURE_ARM_ENDPOINT") or None


def make_clients(credential: Any = None, subscription: str | None = None,
                 **client_kwargs: Any) -> Clients:
    """Resource, network and compute clients; the credential is tried once before any use.

    The SDK's own retries are off (``retry_total=0``): :func:`errors.call` retries, and logs.

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
        raise MissingDependencyError(SDK_MISSING) from None
    subscription = subscription or os.environ.get("AZURE_SUBSCRIPTION_ID")
    if not subscription:
        raise UsageError("azure: no subscription: set AZURE_SUBSCRIPTION_ID")
    if credential is None:
        from azure.core.exceptions import ClientAuthenticationError
        from azure.identity import DefaultAzureCredential

        try:
            with _quiet("azure.identity"):  # it logs every source it tried, many lines each
                credential = DefaultAzureCredential()
                credential.get_token(SCOPE)
        except (ClientAuthenticationError, ValueError):  # ValueError: malformed AZURE_* settings
            source = credential_source(os.environ)
            if source:
                raise CredentialsError(f"azure: the credentials were refused ({source}); "
                                       f"{WHAT_TO_SET}") from None
            raise CredentialsError(f"azure: no usable credentials found; {WHAT_TO_SET}") from None
    endpoint = arm_endpoint()
    if endpoint:
        client_kwargs.setdefault("base_url", endpoint)
    # azure-core would retry up to 10 times beneath errors.call's attempts, unlogged and blind to
    # Retry-After bounds: only the project's loop retries, and says so
    client_kwargs.setdefault("retry_total", 0)
    return Clients(subscription, ResourceManagementClient(credential, subscription, **client_kwargs),
                   NetworkManagementClient(credential, subscription, **client_kwargs),
                   ComputeManagementClient(credential, subscription, **client_kwargs),
                   credential, dict(client_kwargs))


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """Keep *logger*'s warnings off stderr: the error we raise instead is one line."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR + 1)
    try:
        yield
    finally:
        log.setLevel(level)


def credential_source(env: Mapping[str, str]) -> str | None:
    """The first source DefaultAzureCredential would try that is configured here, read from the
    environment and the Azure CLI's directory only: no token is requested, no IMDS is asked."""
    sp = env.get("AZURE_TENANT_ID") and env.get("AZURE_CLIENT_ID")
    if sp and env.get("AZURE_CLIENT_SECRET"):
        return "service principal secret from the environment (AZURE_CLIENT_SECRET)"
    if sp and env.get("AZURE_CLIENT_CERTIFICATE_PATH"):
        return "service principal certificate from the environment (AZURE_CLIENT_CERTIFICATE_PATH)"
    if env.get("AZURE_CLIENT_ID") and env.get("AZURE_USERNAME") and env.get("AZURE_PASSWORD"):
        return "user name and password from the environment (AZURE_USERNAME)"
    if sp and env.get("AZURE_FEDERATED_TOKEN_FILE"):
        return "workload identity (AZURE_FEDERATED_TOKEN_FILE)"
    if env.get("IDENTITY_ENDPOINT") or env.get("MSI_ENDPOINT"):
        return "managed identity (IDENTITY_ENDPOINT)"
    cli_dir = Path(env.get("AZURE_CONFIG_DIR") or Path.home() / ".azure")
    if shutil.which("az") and (cli_dir / "azureProfile.json").is_file():
        return f"Azure CLI login ({cli_dir})"
    return None


def preflight(subscription: str | None) -> str:
    """Which configured source DefaultAzureCredential would use, and the subscription.

    Raises:
        CredentialsError: no source configured, naming what to set.
        UsageError: no subscription.
    """
    try:
        found = importlib.util.find_spec("azure.mgmt.compute")
    except ImportError:
        found = None
    if found is None:
        raise MissingDependencyError(SDK_MISSING)
    source = credential_source(os.environ)
    if source is None:
        raise CredentialsError(f"azure: no credentials found; {WHAT_TO_SET}")
    subscription = subscription or os.environ.get("AZURE_SUBSCRIPTION_ID")
    if not subscription:
        raise UsageError("azure: no subscription: set AZURE_SUBSCRIPTION_ID")
    return f"credentials: {source}; subscription {subscription}"

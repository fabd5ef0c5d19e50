"""The Compute Engine clients: credentials and project from Google's standard chain (Application
Default Credentials), REST transport, and one endpoint shared by every client.

``DCT_GCE_API_ENDPOINT`` points every client, the operations clients included, at another
endpoint (an emulator); the operations client the SDK would build on its own always talks to
the public endpoint, so operations are polled on clients made here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from debian_cloud_tests import __version__
from debian_cloud_tests.errors import MissingDependencyError, UsageError

from .errors import WHAT_TO_SET, CredentialsError, translate

SCOPES = ["https://www.googleapis.com/auth/compute"]


def _compute() -> Any:
    try:
        from google.cloud import compute_v1
    except ImportError:
        raise MissingDependencyError("gce: the gce provider needs google-cloud-compute: "
                                     "pip install 'debian-cloud-tests[gce]'") from None
    return compute_v1


@dataclass
class Clients:
    project: str
    instances: Any
    images: Any
    machine_types: Any
    firewalls: Any
    zone_operations: Any
    global_operations: Any


def default_credentials(project: str | None) -> tuple[Any, str]:
    """Application Default Credentials and the project (given, else the chain's).

    Raises:
        CredentialsError: none found, in one line naming what to set.
    """
    import google.auth
    from google.auth.exceptions import GoogleAuthError

    try:
        credentials, found = google.auth.default(scopes=SCOPES)
    except GoogleAuthError as exc:
        raise translate(exc, "loading credentials") from None
    if credentials is None:
        raise CredentialsError(f"gce: no credentials found; {WHAT_TO_SET}")
    project = project or found or os.environ.get("GOOGLE_CLOUD_PROJECT")
    if not project:
        raise UsageError("gce: no project: set GOOGLE_CLOUD_PROJECT (or the project of the "
                         "application default credentials)")
    return credentials, project


def make_clients(project: str | None = None, credentials: Any = None,
                 endpoint: str | None = None) -> Clients:
    """Every client the provider uses, on one endpoint (``DCT_GCE_API_ENDPOINT`` by default)."""
    compute_v1 = _compute()
    from google.api_core.gapic_v1.client_info import ClientInfo

    if credentials is None:
        credentials, project = default_credentials(project)
    elif not project:
        raise UsageError("gce: no project: set GOOGLE_CLOUD_PROJECT")
    endpoint = endpoint or os.environ.get("DCT_GCE_API_ENDPOINT") or None
    kwargs: dict[str, Any] = {"credentials": credentials, "transport": "rest",
                              "client_info": ClientInfo(user_agent=f"debian-cloud-tests/{__version__}")}
    if endpoint:
        kwargs["client_options"] = {"api_endpoint": endpoint}
    assert project is not None
    return Clients(project, compute_v1.InstancesClient(**kwargs), compute_v1.ImagesClient(**kwargs),
                   compute_v1.MachineTypesClient(**kwargs), compute_v1.FirewallsClient(**kwargs),
                   compute_v1.ZoneOperationsClient(**kwargs), compute_v1.GlobalOperationsClient(**kwargs))


def sdk_versions() -> dict[str, str]:
    from google.cloud.compute_v1 import gapic_version

    return {"google_cloud_compute_version": gapic_version.__version__}

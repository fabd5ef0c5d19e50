"""The Compute Engine clients: credentials and project from Google's standard chain (Application
Default Credentials), REST transport, and one endpoint shared by every client.

``DCT_GCE_API_ENDPOINT`` points every client, the operations clients included, at another
endpoint (an emulator); the operations client the SDK would build on its own always talks to
the public endpoint, so operations are polled on clients made here.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import Any

from debian_cloud_tests import __version__
from debian_cloud_tests.errors import MissingDependencyError, UsageError

from .errors import WHAT_TO_SET, CredentialsError, translate

SCOPES = ["https://www.googleapis.com/auth/compute"]
#: publication uploads to Cloud Storage too
PUBLISH_SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


SDK_MISSING = "gce: the gce provider needs google-cloud-compute: pip install 'debian-cloud-tests[gce]'"


def _compute() -> Any:
    try:
        from google.cloud import compute_v1
    except ImportError:
        raise MissingDependencyError(SDK_MISSING) from None
    return compute_v1


def _require_sdk() -> None:
    """The SDK is installed: found, not imported (importing it takes seconds)."""
    try:
        found = importlib.util.find_spec("google.cloud.compute_v1")
    except ImportError:
        found = None
    if found is None:
        raise MissingDependencyError(SDK_MISSING)


@dataclass
class Clients:
    project: str
    instances: Any
    images: Any
    machine_types: Any
    firewalls: Any
    zone_operations: Any
    global_operations: Any
    regions: Any = None


def default_credentials(project: str | None, scopes: list[str] | None = None) -> tuple[Any, str]:
    """Application Default Credentials (for *scopes*, Compute Engine's by default) and the
    project (given, else the chain's).

    Raises:
        CredentialsError: none found, in one line naming what to set.
    """
    import google.auth
    from google.auth.exceptions import GoogleAuthError

    try:
        credentials, found = google.auth.default(scopes=scopes or SCOPES)
    except GoogleAuthError as exc:
        raise translate(exc, "loading credentials") from None
    if credentials is None:
        raise CredentialsError(f"gce: no credentials found; {WHAT_TO_SET}")
    project = project or found or os.environ.get("GOOGLE_CLOUD_PROJECT")
    if not project:
        raise UsageError("gce: no project: set GOOGLE_CLOUD_PROJECT (or the project of the "
                         "application default credentials)")
    return credentials, project


#: the credential classes google.auth.default() returns, by module, as people call them
_KINDS = {
    "google.oauth2.service_account": "service account",
    "google.oauth2.credentials": "user (gcloud auth application-default login)",
    "google.auth.compute_engine.credentials": "compute engine metadata server",
    "google.auth.identity_pool": "workload identity federation",
    "google.auth.aws": "workload identity federation (aws)",
    "google.auth.pluggable": "workload identity federation (executable)",
    "google.auth.impersonated_credentials": "impersonated service account",
    "google.auth.external_account_authorized_user": "external account user",
}


def preflight(project: str | None) -> str:
    """Which Application Default Credentials were found, from where, and the project; loading
    them reads files only (no token is requested).

    Raises:
        CredentialsError: none found, naming what to set.
        UsageError: no project.
    """
    _require_sdk()
    credentials, project = default_credentials(project)
    module = type(credentials).__module__
    kind = _KINDS.get(module, f"{module}.{type(credentials).__name__}")
    source = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    where = " from GOOGLE_APPLICATION_CREDENTIALS" if source else ""
    return f"{kind} credentials{where}; project {project}"


def api_endpoint(given: str | None = None) -> str | None:
    """The API endpoint: *given*, else ``DCT_GCE_API_ENDPOINT``, else None (the public one)."""
    return given or os.environ.get("DCT_GCE_API_ENDPOINT") or None


def make_clients(project: str | None = None, credentials: Any = None,
                 endpoint: str | None = None) -> Clients:
    """Every client the provider uses, on one endpoint (``DCT_GCE_API_ENDPOINT`` by default)."""
    compute_v1 = _compute()
    from google.api_core.gapic_v1.client_info import ClientInfo

    if credentials is None:
        credentials, project = default_credentials(project)
    elif not project:
        raise UsageError("gce: no project: set GOOGLE_CLOUD_PROJECT")
    endpoint = api_endpoint(endpoint)
    kwargs: dict[str, Any] = {"credentials": credentials, "transport": "rest",
                              "client_info": ClientInfo(user_agent=f"debian-cloud-tests/{__version__}")}
    if endpoint:
        kwargs["client_options"] = {"api_endpoint": endpoint}
    assert project is not None
    return Clients(project, compute_v1.InstancesClient(**kwargs), compute_v1.ImagesClient(**kwargs),
                   compute_v1.MachineTypesClient(**kwargs), compute_v1.FirewallsClient(**kwargs),
                   compute_v1.ZoneOperationsClient(**kwargs), compute_v1.GlobalOperationsClient(**kwargs),
                   compute_v1.RegionsClient(**kwargs))


def sdk_versions() -> dict[str, str]:
    from google.cloud.compute_v1 import gapic_version

    return {"google_cloud_compute_version": gapic_version.__version__}

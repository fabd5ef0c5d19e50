"""The storage container `publish --cloud azure` uploads VHDs to, and gc sweeps.

``DCT_AZURE_STORAGE_ACCOUNT`` names the storage account (it must be in the location the image is
made in), ``DCT_AZURE_CONTAINER`` its container (default ``images``; it must exist).  The account
is reached at ``https://ACCOUNT.blob.core.windows.net`` unless ``DCT_AZURE_BLOB_ENDPOINT`` gives
another URL, with the Resource Manager credential (which then needs the Storage Blob Data
Contributor role), or with ``AZURE_STORAGE_CONNECTION_STRING`` when that is set (an account key, or
an emulator's well-known key and endpoint).

Blob metadata names must be C# identifiers: the run's marks are ``dct_run_id``, ``dct_expires``
and ``dct_uploaded_sha256`` on a blob (the tags of Resource Manager spell them with hyphens).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from debian_cloud_tests.errors import MissingDependencyError
from debian_cloud_tests.publication.errors import PublicationPermissionError, StorageMissingError

from . import errors

T = TypeVar("T")
RUN_ID_META, EXPIRES_META, SHA256_META = "dct_run_id", "dct_expires", "dct_uploaded_sha256"
DEFAULT_CONTAINER = "images"
SDK_MISSING = ("azure: publishing on azure needs azure-storage-blob: "
               "pip install 'debian-cloud-tests[azure]'")


def configured(env: dict[str, str] | None = None) -> bool:
    """Whether a storage account is configured at all (gc sweeps blobs only then)."""
    env = dict(os.environ) if env is None else env
    return bool(env.get("DCT_AZURE_STORAGE_ACCOUNT") or env.get("AZURE_STORAGE_CONNECTION_STRING"))


def container_client(credential: Any) -> Any:
    """The configured container's client (the SDK's own retries on: storage calls are data
    transfers, retried per request).

    Raises:
        UsageError: no storage account configured.
    """
    try:
        from azure.storage.blob import BlobServiceClient
    except ImportError:
        raise MissingDependencyError(SDK_MISSING) from None
    account = os.environ.get("DCT_AZURE_STORAGE_ACCOUNT", "")
    container = os.environ.get("DCT_AZURE_CONTAINER") or DEFAULT_CONTAINER
    endpoint = os.environ.get("DCT_AZURE_BLOB_ENDPOINT") or (
        f"https://{account}.blob.core.windows.net" if account else "")
    connection = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    if connection:
        service = BlobServiceClient.from_connection_string(connection)
    elif endpoint:
        service = BlobServiceClient(endpoint, credential=credential)
    else:
        raise StorageMissingError("publish --cloud azure: set DCT_AZURE_STORAGE_ACCOUNT (and "
                                  "DCT_AZURE_CONTAINER) to the storage account the VHD is uploaded to")
    return service.get_container_client(container)


def call(fn: Callable[..., T], action: str, *args: Any, **kwargs: Any) -> T:
    """One storage call: a refusal is publication's permission error, a missing container one
    line naming it, any other failure the provider's error."""
    from azure.core.exceptions import AzureError as SdkError
    from azure.core.exceptions import HttpResponseError

    try:
        return fn(*args, **kwargs)
    except HttpResponseError as exc:
        code = str(getattr(exc, "error_code", "") or "")
        if code == "ContainerNotFound":
            raise StorageMissingError(f"azure: {action}: the storage container does not exist; "
                                      "create it or set DCT_AZURE_CONTAINER to one that does") from None
        if exc.status_code == 403:
            raise PublicationPermissionError(
                f"azure: {action} is not allowed with these credentials ({code or 403}); give them "
                "the Storage Blob Data Contributor role on the storage account") from None
        raise errors.translate(exc, action) from None
    except SdkError as exc:
        raise errors.translate(exc, action) from None


def or_none(fn: Callable[..., T]) -> Callable[..., T | None]:
    """*fn*, answering None where it meets a missing blob."""
    def found(*args: Any, **kwargs: Any) -> T | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return fn(*args, **kwargs)
        except ResourceNotFoundError as exc:
            if getattr(exc, "error_code", "") == "ContainerNotFound":
                raise
            return None
    return found

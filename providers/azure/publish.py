"""Publishing on Azure as Debian's upload-azure does, each step resumable: the raw image becomes a
fixed VHD in a page blob of the storage account (only the sectors holding data are written, then
the footer), and a private managed image is made from the blob; then release it (the expiry taken
off) or remove it all.

Where: one ``--region``, the Azure location of the storage account (``DCT_AZURE_STORAGE_ACCOUNT``,
``DCT_AZURE_CONTAINER``, ``DCT_AZURE_BLOB_ENDPOINT``, ``AZURE_STORAGE_CONNECTION_STRING``: see
:mod:`.storage`).  A managed image is made from a blob of its own location only, so a publication
is one location; publish again with another account for another.  The image goes into a resource
group made for the run (``dct-publish-<run id>``, deleted by a removal), or into the existing
group ``DCT_AZURE_RESOURCE_GROUP`` names.

Marks: the group the run made, the image (tags ``dct-run-id``, ``dct-expires``,
``dct-uploaded-sha256``) and the blob (metadata ``dct_run_id``, ``dct_expires``, and
``dct_uploaded_sha256`` once the upload is whole) carry the run and an expiry from their creation
on, so what an interrupted publish leaves is gc's; a release takes the expiry off all three.  The
provider records the image's sha256 tag, so a test run on it says which bytes it tested.

A release does not share the image beyond the subscription: sharing (a gallery, the marketplace)
is Debian's publication tooling's.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from debian_cloud_tests import expiry
from debian_cloud_tests.errors import UsageError
from debian_cloud_tests.faibuild.manifest import sha256 as file_sha256
from debian_cloud_tests.publication.errors import PublicationPermissionError, UnknownRegionError
from debian_cloud_tests.publication.state import Publication
from debian_cloud_tests.publication.upload import in_parallel

from . import errors, session, storage, vhd
from .machine import delete_group
from .provider import EXPIRES_TAG, RUN_ID_TAG, SHA256_TAG, _region
from .storage import EXPIRES_META, RUN_ID_META, SHA256_META

UPLOAD_THREADS = 4
REFUSED = frozenset({"AuthorizationFailed", "LinkedAuthorizationFailed"})


def _refusal_is_permission(fn: Callable[..., Any], action: str) -> Callable[..., Any]:
    """*fn*, with Resource Manager's refusal (403, AuthorizationFailed) as publication's error."""
    def called(*args: Any, **kwargs: Any) -> Any:
        from azure.core.exceptions import HttpResponseError

        try:
            return fn(*args, **kwargs)
        except HttpResponseError as exc:
            code = str(getattr(getattr(exc, "error", None), "code", "") or "")
            if exc.status_code == 403 or code in REFUSED:
                raise PublicationPermissionError(
                    f"azure: {action} is not allowed with these credentials ({code or 403}); give "
                    "them the Contributor role on the resource group") from None
            raise
    return called


def _arm(fn: Callable[..., Any], action: str, *args: Any) -> Any:
    return errors.call(_refusal_is_permission(fn, action), action, *args)


def _arm_operation(fn: Callable[..., Any], action: str, *args: Any) -> Any:
    return errors.operation(_refusal_is_permission(fn, action), action, *args, timeout=1800)


class AzurePublisher:
    cloud = "azure"

    def __init__(self, credential: Any = None, subscription: str | None = None,
                 client_kwargs: dict[str, Any] | None = None, **options: Any) -> None:
        if options:
            given = ", ".join(f"--{o.replace('_', '-')}" for o in sorted(options))
            raise UsageError(f"publish --cloud azure: {given} is not an option of this cloud")
        self._args = (credential, subscription, dict(client_kwargs or {}))
        self._clients: session.Clients | None = None
        self._container: Any = None
        self.group = os.environ.get("DCT_AZURE_RESOURCE_GROUP") or None

    def clients(self) -> session.Clients:
        if self._clients is None:
            credential, subscription, kwargs = self._args
            self._clients = session.make_clients(credential, subscription, **kwargs)
        return self._clients

    def container(self) -> Any:
        if self._container is None:
            self._container = storage.container_client(self.clients().credential)
        return self._container

    def check_regions(self, regions: list[str]) -> None:
        """One location, where this subscription can make managed images, before any upload."""
        if len(regions) > 1:
            raise UsageError(f"--region {', '.join(regions)}: a managed image is made in the location "
                             "of its blob's storage account; publish on azure in one --region")
        provider = _arm(self.clients().resource.providers.get, "providers.get", "Microsoft.Compute")
        known = {_region(loc): loc for rt in provider.resource_types or []
                 if str(rt.resource_type).lower() == "images" for loc in rt.locations or []}
        unknown = [r for r in regions if _region(r) not in known]
        if unknown:
            raise UnknownRegionError(f"--region {', '.join(unknown)}: not a location where this "
                                     f"subscription makes images; known: "
                                     f"{', '.join(sorted(known)) or 'none'}")

    # -- register privately -------------------------------------------------------------------

    def register(self, pub: Publication, raw: Path, save: Callable[[], None]) -> None:
        location = pub.regions[0]
        container = self.container()
        # configured and there, before anything is made
        storage.call(container.get_container_properties, "get container properties")
        pub.uploaded_sha256 = file_sha256(raw)
        pub.upload.setdefault("blob", f"{pub.image_name()}.vhd")
        save()
        group = self._group(pub, location, save)
        blob = container.get_blob_client(pub.upload["blob"])
        if pub.upload.get("state") != "complete":
            props = storage.call(storage.or_none(blob.get_blob_properties), "get blob properties")
            if props is None or (props.metadata or {}).get(SHA256_META) != pub.uploaded_sha256:
                pub.upload["state"] = "uploading"
                save()
                self._upload(pub, raw, blob)
            pub.upload["state"] = "complete"
            save()
        if location not in pub.copies:
            pub.copies[location] = self._image(pub, group, location, blob.url)
            save()

    def _group(self, pub: Publication, location: str, save: Callable[[], None]) -> str:
        """The group the image goes in: the one given, or the run's own (made once, kept in the
        state before it exists, so a removal finds it whatever happens next)."""
        if self.group:
            pub.upload.setdefault("group", self.group)
            return self.group
        if "group" not in pub.upload:
            pub.upload.update(group=f"dct-publish-{pub.run_id}", group_ours=True)
            save()
        _arm(self.clients().resource.resource_groups.create_or_update, "resource_groups.create",
             pub.upload["group"], {"location": location, "tags": _tags(pub)})
        return str(pub.upload["group"])

    def _upload(self, pub: Publication, raw: Path, blob: Any) -> None:
        """The fixed VHD: a page blob of the whole disk, its sectors holding data, the footer."""
        size = vhd.data_size(raw.stat().st_size)
        marks = {RUN_ID_META: pub.run_id, EXPIRES_META: expiry.mark()}
        storage.call(blob.create_page_blob, "create page blob", size + vhd.SECTOR, metadata=marks)

        def put(page: tuple[int, bytes]) -> None:
            offset, data = page
            storage.call(blob.upload_page, f"upload page at {offset}", data, offset, len(data))

        in_parallel(put, vhd.ranges(raw), UPLOAD_THREADS, "page-put")
        footer = vhd.footer(size, bytes.fromhex(pub.uploaded_sha256))
        storage.call(blob.upload_page, "upload the VHD footer", footer, size, vhd.SECTOR)
        # last: a blob whose metadata names its sha256 is whole
        storage.call(blob.set_blob_metadata, "set blob metadata",
                     {**marks, SHA256_META: pub.uploaded_sha256})

    def _image(self, pub: Publication, group: str, location: str, blob_url: str) -> str:
        """The managed image of the blob; one of this run and these bytes already there (its
        creation's answer was lost) is taken as it is."""
        compute, name = self.clients().compute, pub.image_name()
        found = _get_image(compute, group, name)
        if found is not None and (found.tags or {}).get(SHA256_TAG) == pub.uploaded_sha256 and \
                (found.tags or {}).get(RUN_ID_TAG) == pub.run_id and \
                str(found.provisioning_state) == "Succeeded":
            return str(found.id)
        arch = str(pub.meta.get("arch", "amd64"))
        firmware = str(pub.meta.get("firmware") or ("uefi" if arch == "arm64" else "bios"))
        body = {"location": location, "tags": {**_tags(pub), SHA256_TAG: pub.uploaded_sha256},
                "properties": {
                    "hyperVGeneration": "V2" if firmware == "uefi" or arch == "arm64" else "V1",
                    "storageProfile": {"osDisk": {"osType": "Linux", "osState": "Generalized",
                                                  "blobUri": blob_url, "caching": "ReadWrite",
                                                  "storageAccountType": "Standard_LRS"}}}}
        image = _arm_operation(compute.images.begin_create_or_update, "images.create", group, name,
                               body)
        return str(image.id)

    # -- test there -----------------------------------------------------------------------------

    def test_args(self, pub: Publication, region: str) -> list[str]:
        arch = ["--arch=arm64"] if pub.meta.get("arch") == "arm64" else []
        return ["--provider=azure", f"--image={pub.copies[region]}", f"--region={region}", *arch]

    # -- release or remove ----------------------------------------------------------------------

    def release(self, pub: Publication, save: Callable[[], None]) -> None:
        """Released: no longer gc's, whatever its expiry said (the image, its blob, the group)."""
        c = self.clients()
        for location, image_id in pub.copies.items():
            group, name = _group_and_name(image_id)
            image = _get_image(c.compute, group, name)
            if image is None:
                raise errors.AzureError(f"azure: image {image_id} is gone; nothing of it can be "
                                        "released")
            if EXPIRES_TAG in (image.tags or {}):
                tags = {k: v for k, v in image.tags.items() if k != EXPIRES_TAG}
                _arm_operation(c.compute.images.begin_update, "images.update", group, name,
                               {"tags": tags})
            what = f"image:{location}:{image_id}"
            if what not in pub.released:
                pub.released.append(what)
            save()
        if pub.upload.get("group_ours"):
            group = _arm(c.resource.resource_groups.get, "resource_groups.get", pub.upload["group"])
            tags = {k: v for k, v in (group.tags or {}).items() if k != EXPIRES_TAG}
            _arm(c.resource.resource_groups.update, "resource_groups.update", pub.upload["group"],
                 {"tags": tags})
        blob = self.container().get_blob_client(pub.upload["blob"])
        props = storage.call(storage.or_none(blob.get_blob_properties), "get blob properties")
        if props is not None and EXPIRES_META in (props.metadata or {}):
            storage.call(blob.set_blob_metadata, "set blob metadata",
                         {k: v for k, v in props.metadata.items() if k != EXPIRES_META})

    def remove(self, pub: Publication, save: Callable[[], None]) -> None:
        c = self.clients()
        for location in list(pub.copies):
            group, name = _group_and_name(pub.copies[location])
            _arm_operation(c.compute.images.begin_delete, "images.delete", group, name)
            del pub.copies[location]
            save()
        if pub.upload.get("state"):  # the blob may exist from "uploading" on
            blob = self.container().get_blob_client(pub.upload["blob"])
            storage.call(storage.or_none(blob.delete_blob), "delete blob")
            del pub.upload["state"]
            save()
        if pub.upload.get("group_ours"):
            failed = delete_group(c, pub.upload["group"])
            if failed:
                raise failed[0]
        pub.upload = {}
        save()


def _tags(pub: Publication) -> dict[str, str]:
    return {RUN_ID_TAG: pub.run_id, EXPIRES_TAG: expiry.mark()}


def _group_and_name(image_id: str) -> tuple[str, str]:
    parts = image_id.strip("/").split("/")
    return parts[3], parts[-1]


def _get_image(compute: Any, group: str, name: str) -> Any:
    from azure.core.exceptions import ResourceNotFoundError

    def get() -> Any:
        try:
            return compute.images.get(group, name)
        except ResourceNotFoundError:
            return None
    return _arm(get, "images.get")

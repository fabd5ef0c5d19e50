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

Without a gallery a release does not share the image beyond the subscription.

Several locations: through an Azure Compute Gallery, ``DCT_AZURE_GALLERY=GROUP/GALLERY/DEFINITION``
(the gallery must exist, preferably in the first ``--region``, the storage account's; the image
definition is made if missing, with the image's architecture (x64, Arm64), Hyper-V generation (V1
for BIOS, V2 for UEFI), osType Linux, osState Generalized and the identifier Debian /
debian-NUMBER / the SKU Debian's marketplace images use (13, 13-gen2, 13-arm64)).  The managed
image is made in the blob's location as above, then a gallery image version of it, named
``0.BUILDDATE.N`` (the build's date, N the run id's time of day, e.g. ``0.20261206.134512``),
replicated to every ``--region`` and excluded from "latest" while it is tested; each location is a
copy of the publication, tested there.  The version carries the run's tags (and the sha256), so gc
deletes an expired one; a definition the publisher made carries the run id, and a removal deletes
it again when no version is left in it.

A gallery release: the version is no longer excluded from "latest", its expiry is taken off (the
managed image's, the blob's and the group's too), and the gallery is shared as
``DCT_AZURE_SHARE_WITH`` says: comma-separated subscription ids are added to the gallery's sharing
(``Add``), ``community`` makes it a community gallery (``EnableCommunity``: public; the gallery must
have been made with a community profile), unset or empty shares nothing beyond the subscription.
Mind that sharing is the gallery's, not a version's: in a gallery already shared, a version under
test is visible too (excluded from "latest" only); test in a gallery of its own and share that.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from debian_cloud_tests import expiry
from debian_cloud_tests.errors import UsageError
from debian_cloud_tests.publication.errors import (
    ImageTooLargeError,
    PublicationPermissionError,
    UnknownRegionError,
)
from debian_cloud_tests.publication.state import Publication
from debian_cloud_tests.publication.upload import in_parallel

from . import errors, session, storage, vhd
from .images import PUBLISHER, sku_for
from .machine import delete_group
from .provider import EXPIRES_TAG, RUN_ID_TAG, SHA256_TAG, location_key, model_attr, text_of
from .storage import EXPIRES_META, RUN_ID_META, SHA256_META

UPLOAD_THREADS = 4
#: the largest OS disk Azure makes from an image
MAX_OS_DISK = 4095 * 2**30
GALLERY_ENV, SHARE_ENV = "DCT_AZURE_GALLERY", "DCT_AZURE_SHARE_WITH"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._()-]{0,89}$")
_SUBSCRIPTION = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
RELEASE_NUMBERS = {"bullseye": "11", "bookworm": "12", "trixie": "13", "forky": "14", "duke": "15"}
#: a version's replication to every location may take long
REPLICATION_TIMEOUT = 3600.0
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


def _arm_operation(fn: Callable[..., Any], action: str, *args: Any, timeout: float = 1800) -> Any:
    return errors.operation(_refusal_is_permission(fn, action), action, *args, timeout=timeout)


def gallery_config() -> tuple[str, str, str] | None:
    """``DCT_AZURE_GALLERY`` as (resource group, gallery, image definition); None when unset."""
    value = os.environ.get(GALLERY_ENV, "").strip()
    if not value:
        return None
    parts = value.split("/")
    if len(parts) != 3 or not all(_NAME.match(p) for p in parts):
        raise UsageError(f"{GALLERY_ENV}={value!r}: give RESOURCE_GROUP/GALLERY/IMAGE_DEFINITION")
    return parts[0], parts[1], parts[2]


def sharing() -> tuple[dict[str, Any], str] | None:
    """What a release shares the gallery with (``DCT_AZURE_SHARE_WITH``): the sharing update's
    body and what to record; None: nothing beyond the subscription."""
    value = os.environ.get(SHARE_ENV, "").strip()
    if not value:
        return None
    if value.lower() == "community":
        return {"operationType": "EnableCommunity"}, "community"
    ids = [i.strip() for i in value.split(",") if i.strip()]
    bad = [i for i in ids if not _SUBSCRIPTION.match(i)]
    if bad or not ids:
        raise UsageError(f"{SHARE_ENV}={value!r}: give comma-separated subscription ids, or "
                         "community")
    return ({"operationType": "Add", "groups": [{"type": "Subscriptions", "ids": ids}]},
            f"subscriptions {','.join(ids)}")


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
        self.gallery = gallery_config()

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
        """One location (several through a gallery, which must exist), where this subscription
        can make managed images, before any upload."""
        if len(regions) > 1 and self.gallery is None:
            raise UsageError(f"--region {', '.join(regions)}: a managed image is made in the location "
                             "of its blob's storage account; publish on azure in one --region, or "
                             f"in several through a gallery ({GALLERY_ENV}=GROUP/GALLERY/DEFINITION)")
        if self.gallery is not None:
            sharing()  # a bad value is said now, not after the tests
            group, name, _ = self.gallery
            found = _get_or_none(self.clients().compute.galleries.get, "galleries.get", group, name)
            if found is None:
                raise UsageError(f"{GALLERY_ENV}: there is no gallery {name} in resource group "
                                 f"{group} (or these credentials cannot read it)")
        provider = _arm(self.clients().resource.providers.get, "providers.get", "Microsoft.Compute")
        known = {location_key(loc): loc for rt in provider.resource_types or []
                 if str(rt.resource_type).lower() == "images" for loc in rt.locations or []}
        unknown = [r for r in regions if location_key(r) not in known]
        if unknown:
            raise UnknownRegionError(f"--region {', '.join(unknown)}: not a location where this "
                                     f"subscription makes images; known: "
                                     f"{', '.join(sorted(known)) or 'none'}")

    # -- register privately -------------------------------------------------------------------

    def register(self, pub: Publication, raw: Path, save: Callable[[], None]) -> None:
        location = pub.regions[0]
        container = self.container()
        # configured and there, and an image Azure can boot, before anything is made
        storage.call(container.get_container_properties, "get container properties")
        if vhd.data_size(raw.stat().st_size) > MAX_OS_DISK:
            raise ImageTooLargeError(f"{raw}: {vhd.data_size(raw.stat().st_size) / 2**30:.0f} GiB "
                                     f"is more than an Azure OS disk holds ({MAX_OS_DISK // 2**30} GiB)")
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
        if self.gallery is None:
            if location not in pub.copies:
                pub.copies[location] = self._image(pub, group, location, blob.url)
                save()
            return
        pub.upload.setdefault("gallery", "/".join(self.gallery))
        if "image" not in pub.upload:
            pub.upload["image"] = self._image(pub, group, location, blob.url)
            save()
        if any(r not in pub.copies for r in pub.regions):
            version = self._version(pub, str(pub.upload["image"]), save)
            pub.copies.update((r, version) for r in pub.regions)
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
        body = {"location": location, "tags": {**_tags(pub), SHA256_TAG: pub.uploaded_sha256},
                "properties": {
                    "hyperVGeneration": _generation(pub),
                    "storageProfile": {"osDisk": {"osType": "Linux", "osState": "Generalized",
                                                  "blobUri": blob_url, "caching": "ReadWrite",
                                                  "storageAccountType": "Standard_LRS"}}}}
        image = _arm_operation(compute.images.begin_create_or_update, "images.create", group, name,
                               body)
        return str(image.id)

    def _version(self, pub: Publication, image_id: str, save: Callable[[], None]) -> str:
        """The gallery image version of the managed image, replicated to every location and
        excluded from "latest"; one of this run and these bytes already there is taken as it is
        when it reaches every location (else it is made again, to them all)."""
        compute, (group, gallery, definition) = self.clients().compute, _gallery(pub)
        found = _arm(compute.galleries.get, "galleries.get", group, gallery)
        location = str(found.location)
        self._definition(pub, location, save)
        name = pub.upload.setdefault("version", _version_name(pub))
        save()
        where = (group, gallery, definition, name)
        version = _get_or_none(compute.gallery_image_versions.get, "gallery_image_versions.get", *where)
        if version is not None:
            tags = version.tags or {}
            if tags.get(RUN_ID_TAG) != pub.run_id:
                raise errors.AzureError(f"azure: gallery image version {name} of {definition} "
                                        "exists and is not this run's; publish again later")
            reached = {location_key(model_attr(r, "name")) for r in
                       model_attr(model_attr(version, "publishing_profile"), "target_regions") or []}
            if tags.get(SHA256_TAG) == pub.uploaded_sha256 and \
                    text_of(model_attr(version, "provisioning_state")) == "Succeeded" and \
                    {location_key(r) for r in pub.regions} <= reached:
                return str(version.id)
        body = {"location": location, "tags": {**_tags(pub), SHA256_TAG: pub.uploaded_sha256},
                "properties": {
                    "publishingProfile": {"targetRegions": _targets(pub), "excludeFromLatest": True},
                    "storageProfile": {"source": {"id": image_id}}}}
        made = _arm_operation(compute.gallery_image_versions.begin_create_or_update,
                              "gallery_image_versions.create", *where, body,
                              timeout=REPLICATION_TIMEOUT)
        return str(made.id)

    def _definition(self, pub: Publication, location: str, save: Callable[[], None]) -> None:
        """The image definition, made if missing (and then the run's to remove when empty); an
        existing one must be of the image's architecture and Hyper-V generation."""
        compute, (group, gallery, definition) = self.clients().compute, _gallery(pub)
        arch = "Arm64" if pub.meta.get("arch") == "arm64" else "x64"
        generation = _generation(pub)
        found = _get_or_none(compute.gallery_images.get, "gallery_images.get", group, gallery,
                             definition)
        if found is not None:
            has = (text_of(model_attr(found, "architecture")) or "x64",
                   text_of(model_attr(found, "hyper_v_generation")) or "V1")
            if (has[0].lower(), has[1].upper()) != (arch.lower(), generation):
                raise UsageError(f"{GALLERY_ENV}: the image definition {definition} is for "
                                 f"{has[0]} {has[1]}, this image is {arch} {generation}; give a "
                                 "definition of its own")
            return
        pub.upload["definition_ours"] = True  # before it exists: a removal deletes it
        save()
        release = str(pub.meta.get("release", ""))
        number = RELEASE_NUMBERS.get(release, release) or "debian"
        firmware_bios = generation == "V1"
        body = {"location": location, "tags": {RUN_ID_TAG: pub.run_id}, "properties": {
            "osType": "Linux", "osState": "Generalized", "hyperVGeneration": generation,
            "architecture": arch,
            "identifier": {"publisher": PUBLISHER, "offer": f"debian-{number}",
                           "sku": sku_for(number, str(pub.meta.get("arch", "amd64")),
                                          firmware_bios)}}}
        _arm_operation(compute.gallery_images.begin_create_or_update, "gallery_images.create",
                       group, gallery, definition, body)

    # -- test there -----------------------------------------------------------------------------

    def test_args(self, pub: Publication, region: str) -> list[str]:
        arch = ["--arch=arm64"] if pub.meta.get("arch") == "arm64" else []
        return ["--provider=azure", f"--image={pub.copies[region]}", f"--region={region}", *arch]

    # -- release or remove ----------------------------------------------------------------------

    def release(self, pub: Publication, save: Callable[[], None]) -> None:
        """Released: no longer gc's, whatever its expiry said (the gallery version, the image, its
        blob, the group); a gallery version is no longer excluded from "latest" and the gallery
        is shared as ``DCT_AZURE_SHARE_WITH`` says."""
        c = self.clients()
        share = sharing() if pub.upload.get("gallery") else None  # a bad value before any change
        if pub.upload.get("gallery"):
            self._release_version(pub, save)
            images = [("", str(pub.upload["image"]))]
        else:
            images = list(pub.copies.items())
        for location, image_id in images:
            group, name = _group_and_name(image_id)
            image = _get_image(c.compute, group, name)
            if image is None:
                raise errors.AzureError(f"azure: image {image_id} is gone; nothing of it can be "
                                        "released")
            if EXPIRES_TAG in (image.tags or {}):
                tags = {k: v for k, v in image.tags.items() if k != EXPIRES_TAG}
                _arm_operation(c.compute.images.begin_update, "images.update", group, name,
                               {"tags": tags})
            if location:
                _record(pub, f"image:{location}:{image_id}")
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
        if share is not None:
            body, what = share
            group, gallery, _ = _gallery(pub)
            _arm_operation(c.compute.gallery_sharing_profile.begin_update, "galleries.share",
                           group, gallery, body)
            _record(pub, f"gallery:{what}:{group}/{gallery}")
            save()

    def _release_version(self, pub: Publication, save: Callable[[], None]) -> None:
        compute, where = self.clients().compute, (*_gallery(pub), str(pub.upload["version"]))
        version_id = next(iter(pub.copies.values()))
        version = _get_or_none(compute.gallery_image_versions.get, "gallery_image_versions.get",
                               *where)
        if version is None:
            raise errors.AzureError(f"azure: gallery image version {version_id} is gone; nothing "
                                    "of it can be released")
        tags = version.tags or {}
        latest = model_attr(model_attr(version, "publishing_profile"), "exclude_from_latest") is False
        if EXPIRES_TAG in tags or not latest:
            _arm_operation(compute.gallery_image_versions.begin_update,
                           "gallery_image_versions.update", *where,
                           {"tags": {k: v for k, v in tags.items() if k != EXPIRES_TAG},
                            "properties": {"publishingProfile": {"targetRegions": _targets(pub),
                                                                 "excludeFromLatest": False}}},
                           timeout=REPLICATION_TIMEOUT)
        _record(pub, f"image-version:{','.join(pub.regions)}:{version_id}")
        save()

    def remove(self, pub: Publication, save: Callable[[], None]) -> None:
        c = self.clients()
        if pub.upload.get("gallery"):
            self._remove_version(pub, save)
        for location in list(pub.copies):
            group, name = _group_and_name(pub.copies[location])
            _arm_operation(c.compute.images.begin_delete, "images.delete", group, name)
            del pub.copies[location]
            save()
        if pub.upload.get("image"):
            group, name = _group_and_name(str(pub.upload["image"]))
            _arm_operation(c.compute.images.begin_delete, "images.delete", group, name)
            del pub.upload["image"]
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

    def _remove_version(self, pub: Publication, save: Callable[[], None]) -> None:
        """The version (by its name, kept before it was made), then the definition when the
        publisher made it and no version is left in it."""
        compute, (group, gallery, definition) = self.clients().compute, _gallery(pub)
        if pub.upload.get("version"):
            _arm_operation(compute.gallery_image_versions.begin_delete,
                           "gallery_image_versions.delete", group, gallery, definition,
                           pub.upload["version"], timeout=REPLICATION_TIMEOUT)
            del pub.upload["version"]
        pub.copies = {}
        save()
        if pub.upload.get("definition_ours"):
            left = _arm(lambda: list(compute.gallery_image_versions.list_by_gallery_image(
                group, gallery, definition)), "gallery_image_versions.list")
            if not left:
                _arm_operation(compute.gallery_images.begin_delete, "gallery_images.delete",
                               group, gallery, definition)
            del pub.upload["definition_ours"]
            save()


def _tags(pub: Publication) -> dict[str, str]:
    return {RUN_ID_TAG: pub.run_id, EXPIRES_TAG: expiry.mark()}


def _group_and_name(image_id: str) -> tuple[str, str]:
    parts = image_id.strip("/").split("/")
    return parts[3], parts[-1]


def _record(pub: Publication, what: str) -> None:
    if what not in pub.released:
        pub.released.append(what)


def _gallery(pub: Publication) -> tuple[str, str, str]:
    group, gallery, definition = str(pub.upload["gallery"]).split("/")
    return group, gallery, definition


def _generation(pub: Publication) -> str:
    """The image's Hyper-V generation: V2 for UEFI (every arm64 image), V1 for BIOS."""
    arch = str(pub.meta.get("arch", "amd64"))
    firmware = str(pub.meta.get("firmware") or ("uefi" if arch == "arm64" else "bios"))
    return "V2" if firmware == "uefi" or arch == "arm64" else "V1"


def _version_name(pub: Publication) -> str:
    """``0.BUILDDATE.N``: Azure's a.b.c of 32-bit integers; N the run id's time of day."""
    digits = re.sub(r"\D", "", pub.run_id)
    date = str(pub.meta.get("build_date", ""))[:10].replace("-", "")
    date = date if len(date) == 8 and date.isdigit() else digits[:8] or "0"
    return f"0.{int(date)}.{int(digits[8:14] or 0)}"


def _targets(pub: Publication) -> list[dict[str, Any]]:
    return [{"name": r, "regionalReplicaCount": 1, "storageAccountType": "Standard_LRS"}
            for r in pub.regions]


def _get_or_none(fn: Callable[..., Any], action: str, *args: Any) -> Any:
    """What *fn* returns; None when Resource Manager says it is not there."""
    from azure.core.exceptions import ResourceNotFoundError

    def get() -> Any:
        try:
            return fn(*args)
        except ResourceNotFoundError:
            return None
    return _arm(get, action)


def _get_image(compute: Any, group: str, name: str) -> Any:
    from azure.core.exceptions import ResourceNotFoundError

    def get() -> Any:
        try:
            return compute.images.get(group, name)
        except ResourceNotFoundError:
            return None
    return _arm(get, "images.get")

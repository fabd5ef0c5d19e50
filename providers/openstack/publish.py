"""Publishing on OpenStack, each step resumable: upload the raw image to Glance in every region as
a private image with the properties Nova reads to boot it (firmware, virtio disk and NIC,
architecture) and the ones Debian's images carry (``os_distro``, ``os_version``); then make every
copy public, or delete them all.

Glance has no copy between regions: each region gets its own upload of the same bytes.  Every
image carries the properties ``dct-run-id`` and ``dct-expires`` from its create call on, so what
an interrupted publish leaves is gc's; a release takes the expiry off.  Each image also carries
``dct-uploaded-sha256``: the provider records it, so a test run on a copy says which bytes it
tested.
"""

from __future__ import annotations

import hashlib
import math
import time
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

from . import retry, session
from .errors import OpenStackError, is_gone, is_quota, status_of
from .resources import EXPIRES_KEY, RUN_ID_KEY, SHA256_KEY

ARCHITECTURES = {"amd64": "x86_64", "arm64": "aarch64"}
VERSIONS = {"bookworm": "12", "trixie": "13", "forky": "14"}
#: what Nova reads to boot a Debian cloud image: virtio disk and NIC, no guest agent
HARDWARE = {"hw_disk_bus": "virtio", "hw_vif_model": "virtio", "hw_qemu_guest_agent": "no"}
#: an interruption leaves an image in one of these: its bytes are not all there
UNFINISHED = frozenset({"queued", "saving", "uploading", "importing", "killed"})
WAIT_SECONDS = 1800


def _call(fn: Callable[..., Any], action: str, *args: Any, **kwargs: Any) -> Any:
    """One Glance call with the provider's retries; a refusal of permission (HTTP 403 that is not
    a quota) and an image over the cloud's size cap (413) are publication's errors."""
    def refused_is_permission(*a: Any, **kw: Any) -> Any:
        from openstack.exceptions import SDKException

        try:
            return fn(*a, **kw)
        except SDKException as exc:
            detail = str(getattr(exc, "details", None) or exc).strip().splitlines()[0][:200]
            if status_of(exc) == 413:  # over the cloud's image_size_cap (or the project's quota)
                raise ImageTooLargeError(f"openstack: {action}: Glance refused the image as too "
                                         f"large (HTTP 413: {detail})") from None
            if status_of(exc) == 403 and not is_quota(exc):
                hint = ("making an image public needs the admin role on most clouds"
                        if "public" in action else "use a user with the member role in the project")
                raise PublicationPermissionError(f"openstack: {action} is not allowed with these "
                                                 f"credentials (HTTP 403: {detail}); {hint}") from None
            raise

    return retry.call(refused_is_permission, action, *args, **kwargs)


def image_properties(pub: Publication, size: int) -> dict[str, Any]:
    """What the image carries: Nova's hardware hints, Debian's identity and the run's marks."""
    arch = str(pub.meta.get("arch", "amd64"))
    firmware = str(pub.meta.get("firmware") or ("uefi" if arch == "arm64" else "bios"))
    props: dict[str, Any] = {"os_distro": "debian", "architecture": ARCHITECTURES.get(arch, arch),
                             **HARDWARE, "min_disk": max(1, math.ceil(size / 2**30)),
                             RUN_ID_KEY: pub.run_id[:255], EXPIRES_KEY: expiry.mark(),
                             SHA256_KEY: pub.uploaded_sha256}
    version = VERSIONS.get(str(pub.meta.get("release", "")))
    if version:
        props["os_version"] = version
    if firmware == "uefi":  # a hybrid image boots either way: Nova's default (BIOS) will do
        props["hw_firmware_type"] = "uefi"
    return props


class OpenStackPublisher:
    cloud = "openstack"

    def __init__(self, os_cloud: str | None = None, **options: Any) -> None:
        if options:
            given = ", ".join(f"--{o.replace('_', '-')}" for o in sorted(options))
            raise UsageError(f"publish --cloud openstack: {given} is not an option of this cloud")
        self.os_cloud = session.cloud_arg(os_cloud)
        self._conns: dict[str, Any] = {}

    def _conn(self, region: str) -> Any:
        if region not in self._conns:
            self._conns[region] = session.connect(self.os_cloud, region)
        return self._conns[region]

    def check_regions(self, regions: list[str]) -> None:
        """Every region must be one where this cloud's catalog has Glance, before any upload."""
        known = self.regions()
        unknown = [r for r in regions if r not in known]
        if unknown:
            raise UnknownRegionError(f"--region {', '.join(unknown)}: not a region of cloud "
                                     f"{self.os_cloud or '(OS_* variables)'} with an image service; "
                                     f"known: {', '.join(sorted(known)) or 'none'}")

    def regions(self) -> set[str]:
        """The regions of the cloud's catalog that have an image service (else its configured one)."""
        conn = session.connect(self.os_cloud)
        access = retry.call(conn.session.auth.get_access, "read the service catalog", conn.session)
        found = access.service_catalog.get_endpoints(service_type="image")
        regions = {str(e.get("region_id") or e.get("region") or "") for e in found.get("image", [])}
        regions.discard("")
        return regions or {str(conn.config.region_name or "")} - {""}

    # -- register privately -------------------------------------------------------------------

    def register(self, pub: Publication, raw: Path, save: Callable[[], None]) -> None:
        md5, pub.uploaded_sha256 = _digests(raw)
        save()
        for region in pub.regions:
            if region in pub.copies and self._status(region, pub.copies[region]) == "active":
                continue
            pub.copies.pop(region, None)
            self._discard_unfinished(pub, region, save)
            found = self._adoptable(pub, region)
            if found is None:
                found = self._upload(pub, region, raw, md5, save)
            pub.copies[region] = found
            pub.upload = {}
            save()

    def _status(self, region: str, image_id: str) -> str:
        image = _get(self._conn(region), image_id)
        return str(image.status) if image is not None else "missing"

    def _discard_unfinished(self, pub: Publication, region: str, save: Callable[[], None]) -> None:
        """An upload an interruption cut short cannot be finished: its image is deleted, as is
        any other unfinished image of this run and name (one whose create answer was lost)."""
        conn = self._conn(region)
        doomed = set()
        if pub.upload.get("region") == region and pub.upload.get("image"):
            image = _get(conn, pub.upload["image"])
            if image is not None and image.status != "active":
                doomed.add(str(image.id))
        doomed |= {str(i.id) for i in self._ours(pub, region) if i.status in UNFINISHED}
        for image_id in sorted(doomed):
            _delete(conn, image_id)
        if pub.upload.get("region") == region:
            pub.upload = {}
            save()

    def _ours(self, pub: Publication, region: str) -> list[Any]:
        """This publication's images in *region*: its name and its run id."""
        name = pub.image_name()
        found = _call(lambda: list(self._conn(region).image.images(name=name)), "list images")
        return [i for i in found if i.name == name
                and (i.properties or {}).get(RUN_ID_KEY) == pub.run_id[:255]]

    def _adoptable(self, pub: Publication, region: str) -> str | None:
        """An active private image of this run with these bytes (its upload's answer was lost)."""
        for image in self._ours(pub, region):
            props = image.properties or {}
            if image.status == "active" and image.visibility == "private" and \
                    props.get(SHA256_KEY) == pub.uploaded_sha256:
                return str(image.id)
        return None

    def _upload(self, pub: Publication, region: str, raw: Path, md5: str,
                save: Callable[[], None]) -> str:
        conn = self._conn(region)
        size = raw.stat().st_size
        # the SDK also records both digests as owner_specified.openstack.md5/sha256
        image = _call(conn.image.create_image, f"create image in {region}", pub.image_name(),
                      allow_duplicates=True, disk_format="raw", container_format="bare",
                      visibility="private", md5=md5, sha256=pub.uploaded_sha256,
                      **image_properties(pub, size))
        pub.upload = {"region": region, "image": str(image.id), "state": "uploading"}
        save()
        try:
            _call(_send, f"upload image {image.id} in {region}", conn, image, raw, size)
        except OpenStackError as exc:
            if exc.status != 409:
                raise
            # a retry after a lost answer: Glance refuses a second upload of the same image;
            # whether the first one finished is the image's status to tell
        _wait_active(conn, str(image.id), region)
        return str(image.id)

    # -- test there -----------------------------------------------------------------------------

    def test_args(self, pub: Publication, region: str) -> list[str]:
        cloud = [f"--os-cloud={self.os_cloud}"] if self.os_cloud else []
        return ["--provider=openstack", f"--image={pub.copies[region]}", f"--region={region}", *cloud]

    # -- release or remove ----------------------------------------------------------------------

    def release(self, pub: Publication, save: Callable[[], None]) -> None:
        for region, image_id in pub.copies.items():
            conn = self._conn(region)
            image = _get(conn, image_id)
            if image is None:
                raise OpenStackError(f"openstack: image {image_id} in {region} is gone; "
                                     "nothing of it can be released")
            props = dict(image.properties or {})
            if image.visibility != "public" or EXPIRES_KEY in props:
                # released: no longer gc's, whatever its expiry said
                props.pop(EXPIRES_KEY, None)
                _call(conn.image.update_image, f"make image {image_id} public in {region}", image,
                      visibility="public", properties=props)
            what = f"visibility:{region}:{image_id}=public"
            if what not in pub.released:
                pub.released.append(what)
            save()

    def remove(self, pub: Publication, save: Callable[[], None]) -> None:
        for region in list(pub.copies):
            _delete(self._conn(region), pub.copies[region])
            del pub.copies[region]
            save()
        if pub.upload.get("image"):
            _delete(self._conn(pub.upload["region"]), pub.upload["image"])
            pub.upload = {}
            save()


def _digests(path: Path) -> tuple[str, str]:
    """The file's md5 (Glance's own checksum) and sha256, in one read."""
    md5, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            md5.update(chunk)
            sha256.update(chunk)
    return md5.hexdigest(), sha256.hexdigest()


def _send(conn: Any, image: Any, raw: Path, size: int) -> None:
    """PUT the bytes as the image's data (a fresh read of the file on every attempt)."""
    from openstack import exceptions

    with raw.open("rb") as f:
        response = image.upload(conn.image, data=f, size=size)
    exceptions.raise_from_response(response)


def _get(conn: Any, image_id: str) -> Any:
    try:
        return _call(conn.image.get_image, f"get image {image_id}", image_id)
    except OpenStackError as exc:
        if is_gone(exc):
            return None
        raise


def _delete(conn: Any, image_id: str) -> None:
    _call(conn.image.delete_image, f"delete image {image_id}", image_id, ignore_missing=True)


def _wait_active(conn: Any, image_id: str, region: str) -> None:
    """After the upload: "saving" until Glance has stored the bytes; "queued" again means it did
    not take them."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        image = _get(conn, image_id)
        status = str(image.status) if image is not None else "missing"
        if status == "active":
            return
        if status in ("queued", "killed", "deleted", "pending_delete", "missing"):
            raise OpenStackError(f"openstack: image {image_id} in {region} is {status}, not active")
        if time.monotonic() > deadline:
            raise OpenStackError(f"openstack: image {image_id} in {region} is still {status} "
                                 f"after {WAIT_SECONDS} s")
        retry.sleep(2)

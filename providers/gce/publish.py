"""Publishing on Compute Engine as Debian does (debian-cloud-images' ``upload-gce``), each step
resumable: the raw image as ``disk.raw`` in a gzip'd GNU tar, uploaded to a Cloud Storage bucket,
then ``images.insert`` of a private image from that object, with the guest OS features and
architecture the image needs and no family; then release it (the family set, readable by every
authenticated user, the expiry taken off) or delete it.

Where: a GCE image is global, so ``--region`` takes one value: ``global`` (GCE keeps the image
in the multi-region nearest the bucket, as Debian's images are kept) or a Cloud Storage location
to keep it in (``eu``, ``us``, ``asia`` or one of the project's regions).  The copy is recorded
as ``global``, the region the provider records for a run on it.

Configuration, from the environment (or the publisher's arguments):

- ``DCT_GCE_BUCKET`` (required to register): the bucket the tarball is uploaded to.  The object
  (``NAME.tar.gz``) is deleted once the image is READY, as ``upload-gce`` does: the image keeps
  its own copy of the bytes.
- ``DCT_GCE_FAMILY``: the family a release sets (default ``debian-13``, ``debian-13-arm64``…).
- ``DCT_GCE_ZONE``: given, the test step runs with ``--zone`` set to it; otherwise give
  ``--pytest-arg=--zone=ZONE``.
- the project and credentials: Application Default Credentials and ``GOOGLE_CLOUD_PROJECT`` as
  for the provider; ``DCT_GCE_API_ENDPOINT`` and Cloud Storage's own ``STORAGE_EMULATOR_HOST``
  point at emulators.

The image and the object carry ``dct-run-id`` and ``dct-expires`` (labels, object metadata) from
their create call on, so what an interrupted publish leaves is gc's; a release takes the expiry
off.  A label holds 63 characters, so the sha256 of the bytes uploaded is in the image's
description (``dct-uploaded-sha256=…``): the provider records it, so a test run on the image
says which bytes it tested.
"""

from __future__ import annotations

import contextlib
import os
import re
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from debian_cloud_tests.errors import MissingDependencyError, UsageError
from debian_cloud_tests.publication.errors import (
    ImageTooLargeError,
    PublicationPermissionError,
    StorageMissingError,
    UnknownRegionError,
)
from debian_cloud_tests.publication.state import Publication

from . import resources, retry, session
from .errors import QUOTA, THROTTLING, CredentialsError, GceError, reason_of, status_of
from .resources import EXPIRES_LABEL, RUN_ID_LABEL, SHA256_MARK

#: the one copy of a global image, under this name in the publication's copies
GLOBAL = "global"
BUCKET_ENV, FAMILY_ENV, ZONE_ENV = "DCT_GCE_BUCKET", "DCT_GCE_FAMILY", "DCT_GCE_ZONE"
#: the largest object Cloud Storage holds: GCE creates an image from one
MAX_OBJECT = 5 * 2**40
MULTI_REGIONS = ("asia", "eu", "us")
ARCHITECTURES = {"amd64": "X86_64", "arm64": "ARM64"}
VERSIONS = {"bookworm": "12", "trixie": "13", "forky": "14"}
#: Debian's kernel drives gVNIC and multi-queue virtio-scsi on every image
FEATURES = ("GVNIC", "VIRTIO_SCSI_MULTIQUEUE")
#: an x86 image that boots UEFI may run as a Confidential VM (AMD SEV, SEV-SNP)
SEV_FEATURES = ("SEV_CAPABLE", "SEV_SNP_CAPABLE", "SEV_LIVE_MIGRATABLE_V2")
STORAGE_URL = "https://storage.googleapis.com"
UPLOAD_TIMEOUT = 3600
WAIT_SECONDS = 1800
STORAGE_MISSING = ("publish --cloud gce needs google-cloud-storage: pip install "
                   "'debian-cloud-tests[gce]'")
_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")


def _refusal(exc: BaseException, action: str) -> PublicationPermissionError | None:
    """HTTP 403 that is not a quota or a rate limit: the credentials may not do *action*."""
    if status_of(exc) != 403 or reason_of(exc) in QUOTA | THROTTLING:
        return None
    said = re.sub(r"\s+", " ", str(getattr(exc, "message", "") or exc)).strip()[:200]
    hint = ("grant roles/storage.objectAdmin on the bucket" if action.startswith("storage")
            else "grant roles/compute.storageAdmin in the project")
    return PublicationPermissionError(f"gce: {action} is not allowed with these credentials "
                                      f"(HTTP 403: {said}); {hint}")


def _call(fn: Callable[..., Any], action: str, **kwargs: Any) -> Any:
    """One Compute Engine or Cloud Storage call with the provider's retries; a refusal of
    permission is publication's error."""
    def refused_is_permission(**kw: Any) -> Any:
        from google.api_core.exceptions import GoogleAPICallError

        try:
            return fn(**kw)
        except GoogleAPICallError as exc:
            refused = _refusal(exc, action)
            if refused is not None:
                raise refused from None
            raise

    return retry.call(refused_is_permission, action, **kwargs)


def _wait_operation(c: session.Clients, op: Any, action: str) -> None:
    """Until the global operation is done; one GCE ended with a refusal is publication's."""
    try:
        retry.wait_operation(lambda: c.global_operations.get(project=c.project, operation=op.name),
                             action, WAIT_SECONDS)
    except CredentialsError as exc:
        raise PublicationPermissionError(exc.message) from None


def image_name(pub: Publication) -> str:
    """:meth:`Publication.image_name` as GCE takes it: lower-case letters, digits and dashes,
    a letter first, at most 63 characters (the date and digest at its end are kept)."""
    name = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]+", "-", pub.image_name().lower())).strip("-")
    if not name[:1].isalpha():
        name = f"debian-{name}"
    if len(name) > 63:
        name = name[:63 - 22].rstrip("-") + "-" + name[-21:].lstrip("-")
    if not _NAME.match(name):
        raise UsageError(f"{pub.image_name()!r}: no GCE image name can be made of it")
    return name


def family(pub: Publication) -> str:
    """The family a release puts the image in: Debian's (``debian-13``, ``debian-13-arm64``)."""
    release = str(pub.meta.get("release", ""))
    name = f"debian-{VERSIONS.get(release, release or 'unknown')}"
    return f"{name}-arm64" if pub.meta.get("arch") == "arm64" else name


def guest_os_features(pub: Publication) -> list[str]:
    arch = str(pub.meta.get("arch", "amd64"))
    firmware = str(pub.meta.get("firmware") or ("uefi" if arch == "arm64" else "bios"))
    uefi = firmware in ("uefi", "hybrid") or arch == "arm64"
    return [*(["UEFI_COMPATIBLE"] if uefi else []), *FEATURES,
            *(SEV_FEATURES if uefi and arch == "amd64" else ())]


class GcePublisher:
    cloud = "gce"

    def __init__(self, bucket: str | None = None, family: str | None = None,
                 project: str | None = None, credentials: Any = None, endpoint: str | None = None,
                 **options: Any) -> None:
        if options:
            given = ", ".join(f"--{o.replace('_', '-')}" for o in sorted(options))
            raise UsageError(f"publish --cloud gce: {given} is not an option of this cloud")
        self.bucket = bucket or os.environ.get(BUCKET_ENV) or ""
        self.family = family or os.environ.get(FAMILY_ENV) or ""
        self._args = (project, credentials, endpoint)
        self._clients: session.Clients | None = None
        self._storage: Any = None

    def clients(self) -> session.Clients:
        if self._clients is None:
            project, credentials, endpoint = self._args
            if credentials is None:
                credentials, project = session.default_credentials(project, session.PUBLISH_SCOPES)
                self._args = (project, credentials, endpoint)
            self._clients = session.make_clients(project, credentials, endpoint)
        return self._clients

    def storage(self) -> Any:
        """The Cloud Storage client, on the project and credentials of the Compute Engine ones."""
        if self._storage is None:
            try:
                from google.cloud import storage
            except ImportError:
                raise MissingDependencyError(STORAGE_MISSING) from None
            c = self.clients()
            self._storage = storage.Client(project=c.project, credentials=self._args[1])
        return self._storage

    def check_regions(self, regions: list[str]) -> None:
        """One location, GCE's or a Cloud Storage one, and a bucket to upload to, before anything
        is uploaded."""
        if len(regions) != 1:
            raise UsageError(f"--region {', '.join(regions)}: a GCE image is global; give one --region, "
                             f"{GLOBAL} or the Cloud Storage location to keep it in (eu, us, asia, "
                             "a region)")
        where = regions[0]
        if where not in (GLOBAL, *MULTI_REGIONS):
            c = self.clients()
            known = {r.name for r in _call(c.regions.list, "regions.list", project=c.project)}
            if where not in known:
                raise UnknownRegionError(f"--region {where}: not a location for a GCE image; known: "
                                         f"{', '.join([GLOBAL, *MULTI_REGIONS, *sorted(known)])}")
        self._require_bucket()

    def _require_bucket(self) -> str:
        if not self.bucket:
            raise StorageMissingError(f"publish --cloud gce: set {BUCKET_ENV} to the Cloud Storage "
                                      "bucket the image is uploaded to (GCE creates images from an "
                                      "object there)")

        def get() -> bool:
            from google.api_core.exceptions import NotFound

            try:
                self.storage().get_bucket(self.bucket)
            except NotFound:
                return False
            return True

        if not _call(get, f"storage get bucket {self.bucket}"):
            raise StorageMissingError(f"{BUCKET_ENV}={self.bucket}: no such Cloud Storage bucket (or "
                                      "not one these credentials can see)")
        return self.bucket

    # -- register privately -------------------------------------------------------------------

    def register(self, pub: Publication, raw: Path, save: Callable[[], None]) -> None:
        c = self.clients()
        save()
        name = image_name(pub)
        image = self._ours(pub, name)
        if image is not None and image.status == "FAILED":
            self._delete_image(name)
            pub.copies.pop(GLOBAL, None)
            save()
            image = None
        if image is None:
            if not self._uploaded(pub):
                self._upload(pub, raw, name, save)
            self._insert(pub, name, save)
        pub.copies[GLOBAL] = f"projects/{c.project}/global/images/{name}"
        save()
        self._wait_ready(name)
        self._delete_object(pub, save)  # the image holds the bytes now

    def _image(self, name: str) -> Any:
        c = self.clients()
        try:
            return _call(c.images.get, "images.get", project=c.project, image=name)
        except GceError as exc:
            if exc.reason != "notFound":
                raise
            return None

    def _ours(self, pub: Publication, name: str) -> Any:
        """The image of that name, which must be this publication's (a run id of its own)."""
        image = self._image(name)
        if image is not None and dict(image.labels).get(RUN_ID_LABEL) != _run_label(pub):
            raise GceError(f"gce: image {name} exists and is not this publication's (labels "
                           f"{dict(image.labels)}); delete it, or publish other bytes")
        return image

    def _uploaded(self, pub: Publication) -> bool:
        """The tarball is whole in the bucket (an interrupted upload leaves no object)."""
        if pub.upload.get("state") != "complete":
            return False
        blob = self.storage().bucket(pub.upload["bucket"]).blob(pub.upload["object"])
        return bool(_call(blob.exists, f"storage get gs://{pub.upload['bucket']}/{pub.upload['object']}"))

    def _upload(self, pub: Publication, raw: Path, name: str, save: Callable[[], None]) -> None:
        bucket = self._require_bucket()
        obj = f"{name}.tar.gz"
        pub.upload = {"bucket": bucket, "object": obj, "state": "uploading"}
        save()
        tarball = raw.with_name(f".{raw.name}.gce.tar.gz")
        try:
            pack(raw, tarball)
            if tarball.stat().st_size > MAX_OBJECT:
                raise ImageTooLargeError(f"{raw}: its tarball of {tarball.stat().st_size / 2**30:.0f} "
                                         f"GiB is more than a Cloud Storage object holds "
                                         f"({MAX_OBJECT // 2**40} TiB)")
            blob = self.storage().bucket(bucket).blob(obj)
            blob.metadata = {**resources.labels(pub.run_id), SHA256_MARK: pub.uploaded_sha256}
            _call(_send, f"storage upload gs://{bucket}/{obj}", blob=blob, tarball=tarball)
        finally:
            tarball.unlink(missing_ok=True)
        pub.upload["state"] = "complete"
        save()

    def _insert(self, pub: Publication, name: str, save: Callable[[], None]) -> None:
        from google.cloud import compute_v1

        c = self.clients()
        arch = str(pub.meta.get("arch", "amd64"))
        body = compute_v1.Image(
            name=name, architecture=ARCHITECTURES.get(arch, arch.upper()),
            raw_disk=compute_v1.RawDisk(
                source=f"{STORAGE_URL}/{pub.upload['bucket']}/{pub.upload['object']}",
                container_type="TAR"),
            guest_os_features=[compute_v1.GuestOsFeature(type_=f) for f in guest_os_features(pub)],
            labels=resources.labels(pub.run_id),
            description=f"Debian {pub.meta.get('release', '')} {arch} ({pub.meta.get('vendor', '')}) "
                        f"{str(pub.meta.get('build_date', ''))[:10]}, published by debian-cloud-tests; "
                        f"{SHA256_MARK}={pub.uploaded_sha256}")
        if pub.regions[0] != GLOBAL:
            body.storage_locations = [pub.regions[0]]
        try:
            op = _call(c.images.insert_unary, "images.insert", project=c.project, image_resource=body)
        except GceError as exc:
            if exc.reason != "alreadyExists":
                raise
            # a retry after a lost answer: the first insert made it; whose it is decides
            self._ours(pub, name)
            return
        pub.copies[GLOBAL] = f"projects/{c.project}/global/images/{name}"
        save()
        _wait_operation(c, op, "images.insert")

    def _wait_ready(self, name: str) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            image = self._image(name)
            status = str(image.status) if image is not None else "missing"
            if status == "READY":
                return
            if status in ("FAILED", "DELETING", "missing"):
                raise GceError(f"gce: image {name} is {status}, not READY")
            if time.monotonic() > deadline:
                raise GceError(f"gce: image {name} is still {status} after {WAIT_SECONDS} s")
            retry.sleep(5)

    # -- test there -----------------------------------------------------------------------------

    def test_args(self, pub: Publication, region: str) -> list[str]:
        zone = os.environ.get(ZONE_ENV)
        return ["--provider=gce", f"--image={pub.copies[region]}",
                f"--image-type={pub.meta.get('vendor') or 'gce'}", *([f"--zone={zone}"] if zone else [])]

    # -- release or remove ----------------------------------------------------------------------

    def release(self, pub: Publication, save: Callable[[], None]) -> None:
        """The expiry off first (a release cut short leaves a private image gc will not take,
        never a public one it would), then readable by all, then the family's pointer."""
        from google.cloud import compute_v1

        c = self.clients()
        name = pub.copies[GLOBAL].rsplit("/", 1)[-1]
        image = self._image(name)
        if image is None:
            raise GceError(f"gce: image {name} is gone; nothing of it can be released")
        labels = dict(image.labels)
        if EXPIRES_LABEL in labels:  # released: no longer gc's, whatever its expiry said
            del labels[EXPIRES_LABEL]
            op = _call(c.images.set_labels_unary, "images.setLabels", project=c.project, resource=name,
                       global_set_labels_request_resource=compute_v1.GlobalSetLabelsRequest(
                           labels=labels, label_fingerprint=image.label_fingerprint))
            _wait_operation(c, op, "images.setLabels")
        member, role = "allAuthenticatedUsers", "roles/compute.imageUser"
        policy = _call(c.images.get_iam_policy, "images.getIamPolicy", project=c.project, resource=name)
        if not any(b.role == role and member in b.members for b in policy.bindings):
            policy.bindings.append(compute_v1.Binding(role=role, members=[member]))
            _call(c.images.set_iam_policy, "images.setIamPolicy", project=c.project, resource=name,
                  global_set_policy_request_resource=compute_v1.GlobalSetPolicyRequest(policy=policy))
        _record(pub, f"iam:{GLOBAL}:{name}={member}:{role}", save)
        wanted = self.family or family(pub)
        if image.family != wanted:
            op = _call(c.images.patch_unary, "images.patch", project=c.project, image=name,
                       image_resource=compute_v1.Image(family=wanted))
            _wait_operation(c, op, "images.patch")
        _record(pub, f"family:{GLOBAL}:{wanted}={name}", save)

    def remove(self, pub: Publication, save: Callable[[], None]) -> None:
        if GLOBAL in pub.copies:
            self._delete_image(pub.copies[GLOBAL].rsplit("/", 1)[-1])
            del pub.copies[GLOBAL]
            save()
        self._delete_object(pub, save)

    def _delete_image(self, name: str) -> None:
        delete_image(self.clients(), name)

    def _delete_object(self, pub: Publication, save: Callable[[], None]) -> None:
        if pub.upload.get("object"):
            delete_object(self.storage(), pub.upload["bucket"], pub.upload["object"])
            pub.upload = {}
            save()


def _run_label(pub: Publication) -> str:
    return resources.labels(pub.run_id)[RUN_ID_LABEL]


def _record(pub: Publication, what: str, save: Callable[[], None]) -> None:
    if what not in pub.released:
        pub.released.append(what)
    save()


def pack(raw: Path, tarball: Path) -> None:
    """*raw* as ``disk.raw``, the only member of a gzip'd GNU tar: what GCE creates images from."""
    info = tarfile.TarInfo("disk.raw")
    info.size, info.mode, info.mtime = raw.stat().st_size, 0o644, int(time.time())
    with tarfile.open(tarball, "w:gz", format=tarfile.GNU_FORMAT, compresslevel=6) as tar, \
            raw.open("rb") as f:
        tar.addfile(info, f)


def _send(blob: Any, tarball: Path) -> None:
    """Upload the tarball (resumable, in one session, beyond 8 MiB: a retry starts it again)."""
    blob.upload_from_filename(str(tarball), content_type="application/gzip", timeout=UPLOAD_TIMEOUT)


def delete_image(c: session.Clients, name: str) -> None:
    """Delete one image; already gone is fine."""
    try:
        op = _call(c.images.delete_unary, "images.delete", project=c.project, image=name)
    except GceError as exc:
        if exc.reason != "notFound":
            raise
        return
    _wait_operation(c, op, "images.delete")


def delete_object(storage: Any, bucket: str, name: str) -> None:
    """Delete one object; already gone is fine."""
    from google.api_core.exceptions import NotFound

    def delete() -> None:
        with contextlib.suppress(NotFound):
            storage.bucket(bucket).blob(name).delete()

    _call(delete, f"storage delete gs://{bucket}/{name}")

"""Publication on Compute Engine through the real google-cloud-compute and google-cloud-storage
clients, against the fake Compute Engine and gcp-storage-emulator on 127.0.0.1 (no guest):
register privately from a tarball in a bucket, resume after interruptions, release or remove,
what gc makes of what an interruption left, and the CLI's refusals."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from debian_cloud_tests.providers.gce import GceProvider, publish, retry
from debian_cloud_tests.providers.gce.gc import collect_garbage
from debian_cloud_tests.providers.gce.resources import EXPIRES_LABEL, RUN_ID_LABEL

from debian_cloud_tests.errors import UsageError
from debian_cloud_tests.expiry import parse as parse_expiry
from debian_cloud_tests.junitprops import Prop
from debian_cloud_tests.publication import errors, state, steps
from debian_cloud_tests.spec import Arch, LaunchSpec

from .fakes.gce_compute import PROJECT, ZONE, FakeGce, running_gce
from .fakes.gcs import FakeGcs, running_gcs
from .test_provider_gce import gce_env
from .test_publication_aws import SIGNALS, reports_on_every_copy, stop_mid_upload
from .test_publication_openstack import make_image as make_raw_image

BUCKET = "dct-images"
ORIGINAL = {"debian-12-bookworm-v20260101", "debian-12-bookworm-arm64-v20260101"}


@dataclass
class Cloud:
    gce: FakeGce
    gcs: FakeGcs
    env: dict[str, str]

    def published(self) -> list[dict[str, Any]]:
        """The images publication made (not the ones the fake starts with)."""
        return [i for name, i in self.gce.images.items() if name not in ORIGINAL]

    def objects(self) -> dict[str, Any]:
        return self.gcs.objects(BUCKET)


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Cloud]:
    monkeypatch.setattr(retry, "sleep", lambda seconds: None)
    with running_gce() as gce, running_gcs(BUCKET) as gcs:
        gce.read_source = gcs.read
        env = {**gce_env(gce, tmp_path), "STORAGE_EMULATOR_HOST": gcs.url, publish.BUCKET_ENV: BUCKET}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv(publish.FAMILY_ENV, raising=False)
        monkeypatch.delenv(publish.ZONE_ENV, raising=False)
        yield Cloud(gce, gcs, env)


def make_image(tmp_path: Path, release: str = "trixie", arch: str = "amd64", firmware: str = "uefi",
               size: int = 1 << 20) -> Path:
    return make_raw_image(tmp_path, release, arch, firmware, vendor="gce", size=size)


@pytest.fixture
def image(tmp_path: Path) -> Path:
    return make_image(tmp_path)


def job(image: Path) -> steps.Job:
    return steps.Job(image, state.default_path(image, "gce"), steps.publisher("gce"))


def register(image: Path, region: str = "global") -> state.Publication:
    return steps.register(job(image), image.with_suffix(".json"), None, [region])


def kept(image: Path) -> dict[str, Any]:
    return json.loads(state.default_path(image, "gce").read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize(("arch", "firmware", "size", "features"), [
    ("amd64", "uefi", 1 << 20, ["UEFI_COMPATIBLE", "GVNIC", "VIRTIO_SCSI_MULTIQUEUE", "SEV_CAPABLE",
                                "SEV_SNP_CAPABLE", "SEV_LIVE_MIGRATABLE_V2"]),
    ("amd64", "bios", 1 << 20, ["GVNIC", "VIRTIO_SCSI_MULTIQUEUE"]),
    # a tarball over 8 MiB goes up as a resumable upload
    ("arm64", "uefi", 9 << 20, ["UEFI_COMPATIBLE", "GVNIC", "VIRTIO_SCSI_MULTIQUEUE"]),
])
def test_registered_privately_from_a_tarball_in_the_bucket(
        cloud: Cloud, tmp_path: Path, arch: str, firmware: str, size: int, features: list[str]) -> None:
    image = make_image(tmp_path, arch=arch, firmware=firmware, size=size)
    seen: list[dict[str, Any]] = []
    read = cloud.gce.read_source

    def read_and_see(url: str) -> bytes:
        assert read is not None
        seen.append({"url": url, "objects": cloud.objects()})
        return read(url)

    cloud.gce.read_source = read_and_see
    before = datetime.now(UTC)
    pub = register(image)
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    (found,) = cloud.published()
    name = found["name"]
    assert name == f"debian-13-gce-{arch}-20261206-{digest[:12]}"
    assert pub.uploaded_sha256 == digest
    assert pub.copies == {"global": f"projects/{PROJECT}/global/images/{name}"}
    # GCE read the object the tarball went up as, and its disk.raw is the image's bytes
    assert seen[0]["url"] == f"https://storage.googleapis.com/{BUCKET}/{name}.tar.gz"
    obj = seen[0]["objects"][f"{name}.tar.gz"]
    assert obj.metadata[RUN_ID_LABEL] == pub.run_id and obj.metadata["dct-uploaded-sha256"] == digest
    assert cloud.gce.image_data[name] == image.read_bytes()
    assert found["rawDisk"]["containerType"] == "TAR" and found["status"] == "READY"
    assert found["architecture"] == {"amd64": "X86_64", "arm64": "ARM64"}[arch]
    assert [f["type"] for f in found["guestOsFeatures"]] == features
    assert found.get("family", "") == "" and "storageLocations" not in found
    assert found["labels"][RUN_ID_LABEL] == pub.run_id
    expires = parse_expiry(found["labels"][EXPIRES_LABEL])
    assert expires and before + timedelta(hours=2) < expires < before + timedelta(hours=4)
    assert found["description"].endswith(f"; dct-uploaded-sha256={digest}")
    assert name not in cloud.gce.iam, "private: no IAM binding"
    # the image holds the bytes: the object is gone, as is the tarball made beside the image
    assert cloud.objects() == {} and kept(image)["upload"] == {}
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_the_provider_records_which_image_it_tested(cloud: Cloud, image: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    pub = register(image)
    link = pub.copies["global"]
    assert job(image).cloud.test_args(pub, "global") == [
        "--provider=gce", f"--image={link}", "--image-type=gce"]
    monkeypatch.setenv(publish.ZONE_ENV, ZONE)
    assert job(image).cloud.test_args(pub, "global")[-1] == f"--zone={ZONE}"
    from google.auth.credentials import AnonymousCredentials

    provider = GceProvider(project=PROJECT, credentials=AnonymousCredentials(), endpoint=cloud.gce.url)
    provider.validate(LaunchSpec(image=link, arch=Arch.AMD64, options={"zone": ZONE}))
    props = provider.properties()
    assert (props[Prop.REGISTERED_IMAGE], props[Prop.REGISTERED_REGION], props[Prop.IMAGE_SHA256]) \
        == (link, "global", pub.uploaded_sha256)
    other = GceProvider(project=PROJECT, credentials=AnonymousCredentials(), endpoint=cloud.gce.url)
    other.validate(LaunchSpec(image="projects/debian-cloud/global/images/family/debian-12",
                              arch=Arch.AMD64, options={"zone": ZONE}))
    assert Prop.REGISTERED_IMAGE not in other.properties()


def test_a_publish_verdict_releases_it(cloud: Cloud, image: Path, tmp_path: Path) -> None:
    pub = register(image)
    policy = reports_on_every_copy(pub, state.default_path(image, "gce"), "gce", tmp_path)
    assert steps.release(job(image), policy, tmp_path / "verdict.json") == 0
    (found,) = cloud.published()
    name = found["name"]
    assert found["family"] == "debian-13" and EXPIRES_LABEL not in found["labels"]
    assert found["labels"][RUN_ID_LABEL] == pub.run_id
    assert cloud.gce.iam[name]["bindings"] == [{"role": "roles/compute.imageUser",
                                                "members": ["allAuthenticatedUsers"]}]
    assert kept(image)["outcome"] == "released"
    assert kept(image)["released"] == [
        f"iam:global:{name}=allAuthenticatedUsers:roles/compute.imageUser",
        f"family:global:debian-13={name}"]
    # released: gc leaves it, however late
    from google.auth.credentials import AnonymousCredentials

    assert collect_garbage(datetime.now(UTC) + timedelta(days=30), PROJECT, AnonymousCredentials(),
                           cloud.gce.url) == []
    assert [i["name"] for i in cloud.published()] == [name]


def test_the_family_may_be_set_and_arm64_has_its_own(cloud: Cloud, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    arm = make_image(tmp_path, release="bookworm", arch="arm64")
    pub = register(arm)
    policy = reports_on_every_copy(pub, state.default_path(arm, "gce"), "gce", tmp_path)
    assert steps.release(job(arm), policy, tmp_path / "verdict.json") == 0
    assert cloud.published()[0]["family"] == "debian-12-arm64"
    monkeypatch.setenv(publish.FAMILY_ENV, "debian-13-daily")
    (tmp_path / "daily").mkdir()
    image = make_image(tmp_path / "daily")
    pub = register(image)
    policy = reports_on_every_copy(pub, state.default_path(image, "gce"), "gce", tmp_path)
    assert steps.release(job(image), policy, tmp_path / "verdict.json") == 0
    assert cloud.gce.images[pub.copies["global"].rsplit("/", 1)[-1]]["family"] == "debian-13-daily"


def test_nothing_tested_holds_and_removes_it(cloud: Cloud, image: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    cut(monkeypatch, "_wait_ready")  # stopped before the object was deleted: it is there
    with pytest.raises(KeyboardInterrupt):
        register(image)
    assert len(cloud.published()) == 1 and len(cloud.objects()) == 1
    assert steps.release(job(image), None, tmp_path / "verdict.json") == 1
    assert cloud.published() == [] and cloud.objects() == {} and cloud.gce.image_data == {}
    assert kept(image)["outcome"] == "removed" and kept(image)["copies"] == {}


def cut(monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    """The next call of publish's *where* (a function, or a method of GcePublisher) is stopped
    by Ctrl-C before it does anything; the one after runs."""
    owner: Any = publish if hasattr(publish, where) else publish.GcePublisher
    real = getattr(owner, where)

    def stop(*args: Any, **kwargs: Any) -> None:
        monkeypatch.setattr(owner, where, real)
        raise KeyboardInterrupt

    monkeypatch.setattr(owner, where, stop)


def test_an_interrupted_upload_is_done_again(cloud: Cloud, image: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    cut(monkeypatch, "_send")
    with pytest.raises(KeyboardInterrupt):
        register(image)
    left = kept(image)
    assert left["upload"]["state"] == "uploading" and left["copies"] == {}
    assert cloud.objects() == {} and cloud.published() == []
    pub = register(image)
    assert pub.run_id == left["run_id"] and len(cloud.published()) == 1
    assert cloud.gce.image_data[cloud.published()[0]["name"]] == image.read_bytes()
    assert cloud.gce.calls.count("images.insert") == 1 and cloud.objects() == {}


def test_a_lost_upload_is_uploaded_again(cloud: Cloud, image: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopped between the upload and the insert, and the object gone meanwhile (deleted by
    hand, a lifecycle rule): uploaded again, then inserted once."""
    cut(monkeypatch, "_insert")
    with pytest.raises(KeyboardInterrupt):
        register(image)
    assert kept(image)["upload"]["state"] == "complete"
    (obj,) = cloud.objects().values()
    obj.delete()
    register(image)
    (found,) = cloud.published()
    assert cloud.gce.image_data[found["name"]] == image.read_bytes()
    assert cloud.gce.calls.count("images.insert") == 1


@pytest.mark.parametrize("how", ["stopped", "lost reply"])
def test_an_interrupted_insert_is_adopted_not_made_twice(cloud: Cloud, image: Path, how: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    if how == "stopped":  # inserted, then Ctrl-C while waiting for its operation
        cut(monkeypatch, "_wait_operation")
        with pytest.raises(KeyboardInterrupt):
            register(image)
        assert [i["status"] for i in cloud.published()] == ["PENDING"]
        assert kept(image)["copies"] != {}
    else:  # GCE inserted it, its answer was lost: the retry is refused (409), the image is ours
        cloud.gce.lost_replies["images.insert"] = 1
    pub = register(image)
    (found,) = cloud.published()
    assert pub.copies == {"global": f"projects/{PROJECT}/global/images/{found['name']}"}
    assert found["status"] == "READY" and cloud.gce.image_data[found["name"]] == image.read_bytes()
    assert cloud.gce.calls.count("images.insert") == (1 if how == "stopped" else 2)
    assert cloud.objects() == {} and kept(image)["upload"] == {}


def test_a_failed_image_is_deleted_and_inserted_again(cloud: Cloud, image: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    cut(monkeypatch, "_wait_operation")
    with pytest.raises(KeyboardInterrupt):
        register(image)
    (failed,) = cloud.published()
    failed["status"] = "FAILED"
    register(image)
    (found,) = cloud.published()
    assert found["status"] == "READY" and found["id"] != failed["id"]
    assert cloud.gce.calls.count("images.delete") == 1 and cloud.gce.calls.count("images.insert") == 2
    assert cloud.gce.image_data[found["name"]] == image.read_bytes()


def test_an_image_of_that_name_another_run_made_is_left_alone(cloud: Cloud, image: Path) -> None:
    register(image)
    (found,) = cloud.published()
    state.default_path(image, "gce").unlink()  # another publication: a run id of its own
    with pytest.raises(publish.GceError, match=f"image {found['name']} exists and is not this"):
        register(image)
    assert cloud.published() == [found] and not state.default_path(image, "gce").exists()


def test_gc_collects_an_expired_leftover(cloud: Cloud, image: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from google.auth.credentials import AnonymousCredentials

    cut(monkeypatch, "_wait_ready")
    with pytest.raises(KeyboardInterrupt):
        register(image)
    (left,) = cloud.published()
    (obj,) = cloud.objects()
    creds = AnonymousCredentials()
    assert collect_garbage(datetime.now(UTC), PROJECT, creds, cloud.gce.url) == []  # not expired
    assert len(cloud.published()) == 1 and len(cloud.objects()) == 1
    assert collect_garbage(datetime.now(UTC) + timedelta(hours=4), PROJECT, creds, cloud.gce.url) \
        == [f"image {left['name']}", f"gs://{BUCKET}/{obj}"]
    assert cloud.published() == [] and cloud.objects() == {}
    assert set(cloud.gce.images) == ORIGINAL, "the images publish did not make are left alone"


@pytest.mark.parametrize(("regions", "error", "says"), [
    (["global", "eu"], UsageError, "a GCE image is global; give one --region"),
    (["europe-west9"], errors.UnknownRegionError, "--region europe-west9: not a location for a GCE "
     "image; known: global, asia, eu, us, asia-east1, europe-west1, us-central1"),
])
def test_regions_a_global_image_cannot_have(cloud: Cloud, image: Path, regions: list[str],
                                            error: type, says: str) -> None:
    with pytest.raises(error) as refused:
        steps.register(job(image), image.with_suffix(".json"), None, regions)
    assert says in str(refused.value) and type(refused.value) is error
    assert "images.insert" not in cloud.gce.calls and cloud.objects() == {}


def test_a_storage_location_is_where_the_image_is_kept(cloud: Cloud, image: Path) -> None:
    pub = register(image, "europe-west1")
    (found,) = cloud.published()
    assert found["storageLocations"] == ["europe-west1"] and list(pub.copies) == ["global"]


def _publish_cli(cloud: Cloud, image: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "debian_cloud_tests.pipeline.cli", "publish",
                           str(image), "--cloud=gce", *args], capture_output=True, text=True,
                          env={**os.environ, **cloud.env, **env}, timeout=120)


def test_no_permission_to_create_images_is_one_line_and_nothing_is_left(cloud: Cloud,
                                                                        image: Path) -> None:
    cloud.gce.fail("images.insert", 403, "forbidden", message="Required 'compute.images.create' "
                   f"permission for 'projects/{PROJECT}/global/images/x'")
    proc = _publish_cli(cloud, image, "--region=global", "--step=register")
    assert proc.returncode == errors.PublicationPermissionError.exit_code == 53, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "images.insert is not allowed" in proc.stderr and "compute.images.create" in proc.stderr
    assert "roles/compute.storageAdmin" in proc.stderr
    assert cloud.gce.calls.count("images.insert") == 1 and cloud.published() == []
    assert cloud.objects() == {}, "the tarball uploaded is deleted"
    assert not state.default_path(image, "gce").exists()


@pytest.mark.parametrize(("bucket", "says"), [
    ("", "publish --cloud gce: set DCT_GCE_BUCKET to the Cloud Storage bucket"),
    ("nowhere", "DCT_GCE_BUCKET=nowhere: no such Cloud Storage bucket"),
])
def test_a_missing_bucket_is_one_line(cloud: Cloud, image: Path, bucket: str, says: str) -> None:
    proc = _publish_cli(cloud, image, "--region=global", "--step=register",
                        **{publish.BUCKET_ENV: bucket})
    assert proc.returncode == errors.StorageMissingError.exit_code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], proc.stderr
    assert "images.insert" not in cloud.gce.calls and cloud.objects() == {}
    assert not state.default_path(image, "gce").exists()


def test_no_permission_to_make_it_public_keeps_it_private_to_try_again(
        cloud: Cloud, image: Path, tmp_path: Path) -> None:
    pub = register(image)
    policy = reports_on_every_copy(pub, state.default_path(image, "gce"), "gce", tmp_path)
    cloud.gce.fail("images.setIamPolicy", 403, "forbidden", message="Required "
                   "'compute.images.setIamPolicy' permission")
    with pytest.raises(errors.PublicationPermissionError, match=r"images\.setIamPolicy is not allowed"):
        steps.release(job(image), policy, tmp_path / "verdict.json")
    (found,) = cloud.published()
    assert found["name"] not in cloud.gce.iam and found.get("family", "") == ""
    assert kept(image)["outcome"] == "" and kept(image)["released"] == []
    assert steps.release(job(image), policy, tmp_path / "verdict.json") == 0  # with the right role
    assert cloud.published()[0]["family"] == "debian-13" and found["name"] in cloud.gce.iam


def test_image_names_are_ones_gce_takes() -> None:
    pub = state.Publication("gce", "/x/Debian_13.GCE.amd64.raw", "0" * 64, "r", ["global"],
                            {"name": "2026_Debian 13 " + "very-long-" * 8, "build_date": "2026-12-06"},
                            uploaded_sha256="ab" * 32)
    name = publish.image_name(pub)
    assert len(name) <= 63 and name.startswith("debian-2026-debian-13-very-long-")
    assert name.endswith("-20261206-abababababab")


def test_an_image_whose_tarball_no_object_holds_is_refused_and_nothing_is_left(
        cloud: Cloud, image: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publish, "MAX_OBJECT", 1 << 20)
    with pytest.raises(errors.ImageTooLargeError, match="more than a Cloud Storage object holds"):
        register(image)
    assert cloud.objects() == {} and "images.insert" not in cloud.gce.calls
    assert not state.default_path(image, "gce").exists()
    assert not list(image.parent.glob(".*.tar.gz")), "the tarball made is removed"


@SIGNALS
def test_a_publish_stopped_mid_upload_resumes_with_one_image(
        cloud: Cloud, image: Path, monkeypatch: pytest.MonkeyPatch, sig: Any) -> None:
    from gcp_storage_emulator.server import RequestHandler

    post, put = RequestHandler.do_POST, RequestHandler.do_PUT

    def slow(send: Any) -> Any:
        def sending(handler: Any) -> Any:
            time.sleep(3)  # a long upload, so that the signal lands in it
            return send(handler)
        return sending

    monkeypatch.setattr(RequestHandler, "do_POST", slow(post))
    monkeypatch.setattr(RequestHandler, "do_PUT", slow(put))
    stop_mid_upload(image, "gce", ["--region=global"], {**os.environ, **cloud.env}, sig)
    monkeypatch.setattr(RequestHandler, "do_POST", post)
    monkeypatch.setattr(RequestHandler, "do_PUT", put)
    resumed = _publish_cli(cloud, image, "--region=global", "--step=register")
    assert resumed.returncode == 0, resumed.stderr
    assert len(cloud.published()) == 1 and cloud.objects() == {}

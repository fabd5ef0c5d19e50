"""Publication on Azure through the real Azure SDK clients against the Resource Manager fake and
azurite (Azure Storage's emulator) on 127.0.0.1, no guest: the raw image as a fixed VHD in a page
blob and a private managed image of it, resumed after interruptions, released or removed, what gc
makes of what an interruption left, and the CLI's refusals."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from debian_cloud_tests.providers.azure import AzureProvider, publish, vhd
from debian_cloud_tests.providers.azure.gc import collect_garbage
from debian_cloud_tests.providers.azure.provider import EXPIRES_TAG, RUN_ID_TAG, SHA256_TAG
from debian_cloud_tests.providers.azure.publish import AzurePublisher
from debian_cloud_tests.providers.azure.storage import EXPIRES_META, RUN_ID_META, SHA256_META

from debian_cloud_tests.errors import ImageNotFoundError, UsageError
from debian_cloud_tests.expiry import parse as parse_expiry
from debian_cloud_tests.junitprops import Prop
from debian_cloud_tests.publication import errors, state, steps
from debian_cloud_tests.spec import Arch, LaunchSpec

from .fakes.azure_arm import LOCATION, SUBSCRIPTION, FakeArm
from .fakes.azurite import ACCOUNT, Azurite, running_azurite, unavailable
from .fakes.slow_link import slow_link
from .test_provider_azure import StubCredential, arm, client_kwargs, https_arm
from .test_publication_aws import SIGNALS, reports_on_every_copy, stop_mid_upload
from .test_publication_openstack import make_image

FIXTURES = (arm, https_arm)  # the Resource Manager fake's, as the provider's tests make it

LATER = timedelta(hours=4)  # past every expiry a run writes


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    why = unavailable()
    if why:
        if os.environ.get("DCT_E2E") == "require":
            pytest.fail(f"azurite required but impossible here: {why}")
        pytest.skip(why)
    with running_azurite(tmp_path_factory.mktemp("azurite")) as server:
        yield server


@pytest.fixture
def container(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A container of the test's own in azurite, configured as a publication's."""
    name = f"t{uuid.uuid4().hex[:16]}"
    found = azurite.service().create_container(name)  # type: ignore[attr-defined]
    for key, value in storage_env(azurite, name).items():
        monkeypatch.setenv(key, value)
    for unset in ("DCT_AZURE_RESOURCE_GROUP", publish.GALLERY_ENV, publish.SHARE_ENV):
        monkeypatch.delenv(unset, raising=False)
    return found


def storage_env(azurite: Azurite, name: str) -> dict[str, str]:
    return {"DCT_AZURE_STORAGE_ACCOUNT": ACCOUNT, "DCT_AZURE_CONTAINER": name,
            "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string}


@pytest.fixture
def image(tmp_path: Path) -> Path:
    return make_image(tmp_path)


def job(arm: FakeArm, image: Path) -> steps.Job:
    return steps.Job(image, state.default_path(image, "azure"),
                     AzurePublisher(StubCredential(), SUBSCRIPTION, client_kwargs(arm)))


def register(arm: FakeArm, image: Path, *regions: str) -> state.Publication:
    return steps.register(job(arm, image), image.with_suffix(".json"), None, list(regions or [LOCATION]))


def kept(image: Path) -> dict[str, Any]:
    return json.loads(state.default_path(image, "azure").read_text())  # type: ignore[no-any-return]


def images_of(arm: FakeArm) -> list[dict[str, Any]]:
    return [r for p, r in arm.resources.items() if "/microsoft.compute/images/" in p]


def blobs(container: Any) -> dict[str, Any]:
    return {b.name: b for b in container.list_blobs(include=["metadata"])}


def gc(arm: FakeArm, container: Any, when: datetime) -> list[str]:
    return collect_garbage(when, StubCredential(), SUBSCRIPTION, container=container, **client_kwargs(arm))


@pytest.mark.parametrize(("arch", "firmware", "generation"), [("amd64", "bios", "V1"),
                                                               ("arm64", "uefi", "V2")])
def test_registered_privately_as_a_fixed_vhd_and_a_managed_image(
        arm: FakeArm, container: Any, tmp_path: Path, arch: str, firmware: str, generation: str) -> None:
    image = make_image(tmp_path, "trixie", arch, firmware)
    before = datetime.now(UTC)
    pub = register(arm, image)
    raw = image.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    assert pub.uploaded_sha256 == digest
    # the page blob: the raw bytes, zeros to a whole MiB, a valid fixed-VHD footer
    (name,) = blobs(container)
    blob = container.get_blob_client(name)
    data = blob.download_blob().readall()
    size = vhd.data_size(len(raw))
    assert size % vhd.MIB == 0 and len(data) == size + 512
    assert data[:len(raw)] == raw and data[len(raw):size].count(0) == size - len(raw)
    assert vhd.check_footer(data[size:]) == size
    # only the sectors holding data were written: the MiB of zeros in the middle was not
    written = [(r.start, r.end) for r in blob.list_page_ranges()]
    assert written and not any(start <= vhd.MIB + 4096 <= end for start, end in written)
    assert written[-1] == (size, size + 511)
    meta = blob.get_blob_properties().metadata
    assert (meta[RUN_ID_META], meta[SHA256_META]) == (pub.run_id, digest)
    # the managed image: private to this subscription, in the run's group, made from the blob
    (made,) = images_of(arm)
    assert pub.copies == {LOCATION: made["id"]} and made["name"] == pub.image_name()
    assert made["location"] == LOCATION and f"/resourceGroups/dct-publish-{pub.run_id}/" in made["id"]
    props = made["properties"]
    assert props["hyperVGeneration"] == generation
    assert props["storageProfile"]["osDisk"] | {"blobUri": ""} == {
        "osType": "Linux", "osState": "Generalized", "blobUri": "", "caching": "ReadWrite",
        "storageAccountType": "Standard_LRS"}
    assert props["storageProfile"]["osDisk"]["blobUri"] == blob.url
    tags = made["tags"]
    assert (tags[RUN_ID_TAG], tags[SHA256_TAG]) == (pub.run_id, digest)
    expires = parse_expiry(tags[EXPIRES_TAG])
    assert expires and before + timedelta(hours=2) < expires < before + LATER
    (group,) = arm.groups()
    assert group["tags"][RUN_ID_TAG] == pub.run_id and EXPIRES_TAG in group["tags"]
    assert kept(image)["upload"]["state"] == "complete"


def test_a_vhd_qemu_img_reads_as_a_fixed_one(tmp_path: Path) -> None:
    """The footer as another implementation reads it: qemu-img's vpc driver, told to take the
    footer's size as Azure does (for a creator it does not know, it takes the CHS geometry's)."""
    qemu_img = "/usr/bin/qemu-img"
    if not os.access(qemu_img, os.X_OK):
        pytest.skip("qemu-img not installed")
    size = vhd.data_size(5 * vhd.MIB + 1)
    path = tmp_path / "disk.vhd"
    path.write_bytes(bytes(size) + vhd.footer(size, b"\x01" * 32))
    out = subprocess.run([qemu_img, "info", "--output=json", "--image-opts",
                          f"driver=vpc,force_size_calc=current_size,file.filename={path}"],
                         capture_output=True, text=True, check=True)
    info = json.loads(out.stdout)
    assert info["virtual-size"] == size and info["format"] == "vpc"


def test_the_provider_records_which_image_it_tested(arm: FakeArm, container: Any, image: Path) -> None:
    pub = register(arm, image)
    assert job(arm, image).cloud.test_args(pub, LOCATION) == [
        "--provider=azure", f"--image={pub.copies[LOCATION]}", f"--region={LOCATION}"]
    provider = AzureProvider(StubCredential(), SUBSCRIPTION, **client_kwargs(arm))
    provider.validate(LaunchSpec(image=pub.copies[LOCATION], arch=Arch.AMD64, options={"region": LOCATION}))
    props = provider.properties()
    assert (props[Prop.REGISTERED_IMAGE], props[Prop.REGISTERED_REGION], props[Prop.IMAGE_SHA256]) \
        == (pub.copies[LOCATION], LOCATION, pub.uploaded_sha256)
    other = AzureProvider(StubCredential(), SUBSCRIPTION, **client_kwargs(arm))
    other.validate(LaunchSpec(image=arm.add_managed_image(), arch=Arch.AMD64, options={"region": LOCATION}))
    assert Prop.REGISTERED_IMAGE not in other.properties()


def test_a_publish_verdict_releases_it(arm: FakeArm, container: Any, image: Path, tmp_path: Path) -> None:
    pub = register(arm, image)
    policy = reports_on_every_copy(pub, state.default_path(image, "azure"), "azure", tmp_path)
    assert steps.release(job(arm, image), policy, tmp_path / "verdict.json") == 0
    (made,) = images_of(arm)
    assert EXPIRES_TAG not in made["tags"] and made["tags"][SHA256_TAG] == pub.uploaded_sha256
    (group,) = arm.groups()
    assert EXPIRES_TAG not in group["tags"]
    (blob,) = blobs(container).values()
    assert EXPIRES_META not in blob.metadata and blob.metadata[SHA256_META] == pub.uploaded_sha256
    assert kept(image)["outcome"] == "released"
    assert kept(image)["released"] == [f"image:{LOCATION}:{made['id']}"]
    # released: gc leaves it, however late
    assert gc(arm, container, datetime.now(UTC) + timedelta(days=30)) == []
    assert len(images_of(arm)) == 1 and len(blobs(container)) == 1


def test_nothing_tested_holds_and_removes_image_blob_and_group(arm: FakeArm, container: Any, image: Path,
                                                               tmp_path: Path) -> None:
    register(arm, image)
    assert steps.release(job(arm, image), None, tmp_path / "verdict.json") == 1
    assert arm.leftovers() == {} and blobs(container) == {}
    assert kept(image)["outcome"] == "removed" and kept(image)["copies"] == {}


def cut_upload(monkeypatch: pytest.MonkeyPatch) -> None:
    """The next upload stops after its first pages (Ctrl-C)."""
    write = publish.in_parallel

    def cut(put: Any, pages: Any, *args: Any) -> None:
        monkeypatch.setattr(publish, "in_parallel", write)
        put(next(pages))
        raise KeyboardInterrupt

    monkeypatch.setattr(publish, "in_parallel", cut)


def test_an_interrupted_upload_is_written_again(arm: FakeArm, container: Any, image: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    cut_upload(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        register(arm, image)
    left = kept(image)
    assert left["upload"]["state"] == "uploading" and left["copies"] == {}
    (partial,) = blobs(container).values()
    assert SHA256_META not in partial.metadata and images_of(arm) == []
    pub = register(arm, image)
    assert pub.run_id == left["run_id"] and len(images_of(arm)) == 1
    (blob,) = blobs(container).values()
    data = container.get_blob_client(blob.name).download_blob().readall()
    assert data.startswith(image.read_bytes()) and blob.metadata[SHA256_META] == pub.uploaded_sha256


def test_a_whole_blob_is_not_uploaded_again(arm: FakeArm, container: Any, image: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopped after the upload, before the state said so: the blob's metadata says it is whole."""
    make = AzurePublisher._image

    def stop(*args: Any) -> str:
        monkeypatch.setattr(AzurePublisher, "_image", make)
        raise KeyboardInterrupt

    monkeypatch.setattr(AzurePublisher, "_image", stop)
    with pytest.raises(KeyboardInterrupt):
        register(arm, image)
    path = state.default_path(image, "azure")
    lost = json.loads(path.read_text())
    lost["upload"]["state"] = "uploading"
    path.write_text(json.dumps(lost))
    (name,) = blobs(container)
    etag = container.get_blob_client(name).get_blob_properties().etag
    monkeypatch.setattr(publish, "in_parallel", lambda *a: pytest.fail("uploaded again"))
    pub = register(arm, image)
    assert container.get_blob_client(name).get_blob_properties().etag == etag
    assert list(pub.copies) == [LOCATION] and len(images_of(arm)) == 1


def test_an_image_whose_answer_was_lost_is_adopted(arm: FakeArm, container: Any, image: Path) -> None:
    pub = register(arm, image)
    path = state.default_path(image, "azure")
    lost = json.loads(path.read_text())
    lost["copies"] = {}
    path.write_text(json.dumps(lost))
    again = register(arm, image)
    assert again.copies == pub.copies and arm.calls.count("PUT images") == 1


def test_gc_collects_an_interrupted_upload_once_it_expires(arm: FakeArm, container: Any, image: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    cut_upload(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        register(arm, image)
    (name,) = blobs(container)
    group = kept(image)["upload"]["group"]
    assert gc(arm, container, datetime.now(UTC)) == []  # not expired yet
    assert sorted(gc(arm, container, datetime.now(UTC) + LATER)) == [f"blob {name}", group]
    assert arm.leftovers() == {} and blobs(container) == {}


def test_gc_collects_an_expired_image_in_a_given_group(arm: FakeArm, container: Any, image: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """An image in a group the run did not make goes alone; the group and others' images stay."""
    path = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/debian-images"
    arm.resources[path.lower()] = {"id": path, "name": "debian-images", "location": LOCATION}
    monkeypatch.setenv("DCT_AZURE_RESOURCE_GROUP", "debian-images")
    theirs = arm.add_managed_image()
    pub = register(arm, image)
    assert pub.copies[LOCATION].startswith(f"{path}/providers/Microsoft.Compute/images/")
    (name,) = blobs(container)
    assert sorted(gc(arm, container, datetime.now(UTC) + LATER)) == [
        f"blob {name}", f"image {pub.image_name()}"]
    assert list(arm.resources) == [path.lower()] and theirs.lower() in arm.images
    assert blobs(container) == {}


def test_an_unknown_location_or_two_are_refused_before_anything_is_made(
        arm: FakeArm, container: Any, image: Path) -> None:
    with pytest.raises(errors.UnknownRegionError, match=r"marsnorth.*known: eastus, northeurope, westeurope"):
        register(arm, image, "marsnorth")
    with pytest.raises(UsageError, match="one --region, or in several through a gallery "
                       r"\(DCT_AZURE_GALLERY=GROUP/GALLERY/DEFINITION\)") as refused:
        register(arm, image, LOCATION, "northeurope")
    assert "\n" not in str(refused.value)
    assert arm.leftovers() == {} and blobs(container) == {}
    assert not state.default_path(image, "azure").exists()


def test_an_image_larger_than_an_os_disk_is_refused_before_anything_is_made(
        arm: FakeArm, container: Any, image: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publish, "MAX_OS_DISK", 1 << 20)
    with pytest.raises(errors.ImageTooLargeError, match="more than an Azure OS disk holds"):
        register(arm, image)
    assert arm.leftovers() == {} and blobs(container) == {}
    assert not state.default_path(image, "azure").exists()


def test_a_missing_container_is_one_line_and_nothing_is_left(
        https_arm: tuple[FakeArm, dict[str, str]], azurite: Azurite, image: Path, tmp_path: Path) -> None:
    fake, env = https_arm
    proc = subprocess.run([sys.executable, "-m", "debian_cloud_tests.pipeline.cli", "publish", str(image),
                           "--cloud=azure", f"--region={LOCATION}", "--step=register"],
                          capture_output=True, text=True, timeout=180, cwd=tmp_path,
                          env={**os.environ, **env, **storage_env(azurite, "nosuchcontainer"),
                               "HOME": str(tmp_path)})
    assert proc.returncode == errors.StorageMissingError.exit_code, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "the storage container does not exist; create it or set DCT_AZURE_CONTAINER" in proc.stderr
    assert "PUT resourcegroups" not in fake.calls, "the container is checked before anything is made"
    assert fake.leftovers() == {} and not state.default_path(image, "azure").exists()


def test_no_permission_to_make_the_image_is_exit_53_and_nothing_is_left(
        https_arm: tuple[FakeArm, dict[str, str]], azurite: Azurite, image: Path, tmp_path: Path) -> None:
    fake, env = https_arm
    name = f"t{uuid.uuid4().hex[:16]}"
    made = azurite.service().create_container(name)  # type: ignore[attr-defined]
    fake.fail("PUT images", 403, "AuthorizationFailed",
              message="The client does not have authorization to perform action "
              "'Microsoft.Compute/images/write'.")
    proc = subprocess.run([sys.executable, "-m", "debian_cloud_tests.pipeline.cli", "publish", str(image),
                           "--cloud=azure", f"--region={LOCATION}", "--step=register"],
                          capture_output=True, text=True, timeout=180, cwd=tmp_path,
                          env={**os.environ, **env, **storage_env(azurite, name), "HOME": str(tmp_path)})
    assert proc.returncode == errors.PublicationPermissionError.exit_code, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "images.create is not allowed" in proc.stderr and "AuthorizationFailed" in proc.stderr
    assert "PUT images" in fake.calls and fake.leftovers() == {}  # the run's group removed
    assert blobs(made) == {}  # and the blob
    assert not state.default_path(image, "azure").exists()


# -- through a gallery: several locations -----------------------------------------------------

OTHER = "northeurope"
SHARED_WITH = ("11111111-2222-3333-4444-555555555555", "66666666-7777-8888-9999-000000000000")


@pytest.fixture
def gallery(arm: FakeArm, container: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """A gallery of the publisher's, configured with a definition it does not hold yet."""
    gid = arm.add_gallery()
    monkeypatch.setenv(publish.GALLERY_ENV, "galleries/debian-publish/debian-12")
    return gid


def version_of(arm: FakeArm, gallery: str) -> dict[str, Any]:
    (found,) = [r for p, r in arm.resources.items() if p.startswith(f"{gallery.lower()}/images/")
                and "/versions/" in p]
    return found


def test_two_locations_are_one_gallery_version_replicated_to_both(
        arm: FakeArm, gallery: str, image: Path) -> None:
    pub = register(arm, image, LOCATION, OTHER)
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    version = version_of(arm, gallery)
    vid = version["id"]
    assert pub.copies == {LOCATION: vid, OTHER: vid}
    assert vid.startswith(f"{gallery}/images/debian-12/versions/")
    assert version["name"] == f"0.20261206.{int(pub.run_id[8:14])}"
    props = version["properties"]
    profile = props["publishingProfile"]
    assert [r["name"] for r in profile["targetRegions"]] == [LOCATION, OTHER]
    assert profile["excludeFromLatest"] is True
    assert [s["region"] for s in props["replicationStatus"]["summary"]] == [LOCATION, OTHER]
    # made from the managed image of the blob, in the blob's location
    (made,) = images_of(arm)
    assert props["storageProfile"]["source"]["id"] == made["id"] and made["location"] == LOCATION
    tags = version["tags"]
    assert (tags[RUN_ID_TAG], tags[SHA256_TAG]) == (pub.run_id, digest) and EXPIRES_TAG in tags
    definition = arm.resources[f"{gallery}/images/debian-12".lower()]
    assert definition["properties"] | {"provisioningState": ""} == {
        "osType": "Linux", "osState": "Generalized", "hyperVGeneration": "V1", "architecture": "x64",
        "identifier": {"publisher": "Debian", "offer": "debian-12", "sku": "12"},
        "provisioningState": ""}
    assert kept(image)["upload"]["definition_ours"] is True
    # tested once per location, there; the provider finds it replicated and records it
    for region in (LOCATION, OTHER):
        assert f"--region={region}" in job(arm, image).cloud.test_args(pub, region)
        provider = AzureProvider(StubCredential(), SUBSCRIPTION, **client_kwargs(arm))
        provider.validate(LaunchSpec(image=vid, arch=Arch.AMD64, options={"region": region}))
        found = provider.properties()
        assert (found[Prop.REGISTERED_IMAGE], found[Prop.REGISTERED_REGION], found[Prop.IMAGE_SHA256]) \
            == (vid, region, digest)
    elsewhere = AzureProvider(StubCredential(), SUBSCRIPTION, **client_kwargs(arm))
    with pytest.raises(ImageNotFoundError, match="not replicated to eastus"):
        elsewhere.validate(LaunchSpec(image=vid, arch=Arch.AMD64, options={"region": "eastus"}))
    # resumed: nothing made again
    again = register(arm, image, LOCATION, OTHER)
    assert again.copies == pub.copies and arm.calls.count("PUT versions") == 1


@pytest.mark.parametrize(("share_with", "shared", "recorded"), [
    (",".join(SHARED_WITH), {"operationType": "Add", "groups": [{"type": "Subscriptions",
                                                                  "ids": list(SHARED_WITH)}]},
     f"subscriptions {','.join(SHARED_WITH)}"),
    ("community", {"operationType": "EnableCommunity"}, "community"),
    ("", None, None)])
def test_a_publish_verdict_releases_the_version_and_shares_the_gallery(
        arm: FakeArm, gallery: str, container: Any, image: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, share_with: str, shared: dict[str, Any] | None,
        recorded: str | None) -> None:
    monkeypatch.setenv(publish.SHARE_ENV, share_with)
    pub = register(arm, image, LOCATION, OTHER)
    policy = reports_on_every_copy(pub, state.default_path(image, "azure"), "azure", tmp_path)
    assert steps.release(job(arm, image), policy, tmp_path / "verdict.json") == 0
    version = version_of(arm, gallery)
    profile = version["properties"]["publishingProfile"]
    assert profile["excludeFromLatest"] is False
    assert [r["name"] for r in profile["targetRegions"]] == [LOCATION, OTHER]
    assert EXPIRES_TAG not in version["tags"] and version["tags"][SHA256_TAG] == pub.uploaded_sha256
    (made,) = images_of(arm)
    assert EXPIRES_TAG not in made["tags"]
    group = arm.resources[f"/subscriptions/{SUBSCRIPTION}/resourcegroups/dct-publish-{pub.run_id}"]
    assert EXPIRES_TAG not in group["tags"]
    (blob,) = blobs(container).values()
    assert EXPIRES_META not in blob.metadata
    assert arm.shared == ({gallery.lower(): [shared]} if shared else {})
    released = kept(image)["released"]
    assert released[0] == f"image-version:{LOCATION},{OTHER}:{version['id']}"
    assert released[1:] == ([f"gallery:{recorded}:galleries/debian-publish"] if recorded else [])
    # released: gc leaves it, however late
    assert gc(arm, container, datetime.now(UTC) + timedelta(days=30)) == []
    assert version_of(arm, gallery) and len(images_of(arm)) == 1


def test_a_bad_share_setting_is_refused_before_anything_is_made(
        arm: FakeArm, gallery: str, image: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(publish.SHARE_ENV, "everyone")
    with pytest.raises(UsageError, match="DCT_AZURE_SHARE_WITH='everyone': give comma-separated"):
        register(arm, image, LOCATION, OTHER)
    assert "PUT resourcegroups" not in arm.calls and not state.default_path(image, "azure").exists()


def test_a_missing_gallery_is_refused_before_anything_is_made(
        arm: FakeArm, container: Any, image: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(publish.GALLERY_ENV, "galleries/nosuchgallery/debian-12")
    with pytest.raises(UsageError, match="no gallery nosuchgallery in resource group galleries"):
        register(arm, image, LOCATION, OTHER)
    assert arm.leftovers() == {} and blobs(container) == {}


def test_nothing_tested_removes_version_definition_image_blob_and_group(
        arm: FakeArm, gallery: str, container: Any, image: Path, tmp_path: Path) -> None:
    register(arm, image, LOCATION, OTHER)
    assert steps.release(job(arm, image), None, tmp_path / "verdict.json") == 1
    galleries = f"/subscriptions/{SUBSCRIPTION}/resourcegroups/galleries"
    assert sorted(arm.resources) == [galleries, gallery.lower()]  # the gallery alone is left
    assert blobs(container) == {} and arm.shared == {}
    assert kept(image)["outcome"] == "removed" and kept(image)["copies"] == {}


def test_a_definition_not_the_publishers_is_kept(
        arm: FakeArm, gallery: str, container: Any, image: Path, tmp_path: Path) -> None:
    """An existing definition of the image's kind takes the version; a removal leaves it."""
    register(arm, image, LOCATION, OTHER)
    definition = f"{gallery}/images/debian-12".lower()
    theirs = {**arm.resources[definition], "tags": {}}
    steps.release(job(arm, image), None, tmp_path / "verdict.json")
    arm.resources[definition] = theirs
    (tmp_path / "again").mkdir()
    again = make_image(tmp_path / "again")
    pub = register(arm, again, LOCATION, OTHER)
    assert "definition_ours" not in kept(again)["upload"] and version_of(arm, gallery)
    assert steps.release(job(arm, again), None, tmp_path / "verdict2.json") == 1
    assert definition in arm.resources and pub.copies and kept(again)["copies"] == {}


def test_gc_collects_an_expired_gallery_version(arm: FakeArm, gallery: str, container: Any,
                                                image: Path) -> None:
    pub = register(arm, image, LOCATION, OTHER)
    version = version_of(arm, gallery)
    (name,) = blobs(container)
    assert gc(arm, container, datetime.now(UTC)) == []  # not expired yet
    assert sorted(gc(arm, container, datetime.now(UTC) + LATER)) == sorted([
        f"blob {name}", f"dct-publish-{pub.run_id}",
        f"gallery image version debian-publish/debian-12/{version['name']}"])
    assert version["id"].lower() not in arm.resources and images_of(arm) == []


@SIGNALS
def test_a_publish_stopped_mid_upload_resumes_with_one_whole_blob_and_image(
        https_arm: tuple[FakeArm, dict[str, str]], azurite: Azurite, image: Path,
        tmp_path: Path, sig: Any) -> None:
    fake, env = https_arm
    name = f"t{uuid.uuid4().hex[:16]}"
    made = azurite.service().create_container(name)  # type: ignore[attr-defined]
    env = {**os.environ, **env, **storage_env(azurite, name), "HOME": str(tmp_path)}
    port = int(azurite.url.split(":")[2].split("/")[0])
    with slow_link(port, delay=1.0) as slow:  # a congested link: the signal lands in the upload
        slowed = Azurite(azurite.url.replace(f":{port}/", f":{slow}/"))
        stop_mid_upload(image, "azure", [f"--region={LOCATION}"],
                        {**env, "AZURE_STORAGE_CONNECTION_STRING": slowed.connection_string}, sig)
    resumed = subprocess.run([sys.executable, "-m", "debian_cloud_tests.pipeline.cli", "publish",
                              str(image), "--cloud=azure", f"--region={LOCATION}", "--step=register"],
                             capture_output=True, text=True, timeout=180, cwd=tmp_path, env=env)
    assert resumed.returncode == 0, resumed.stderr
    (blob,) = blobs(made).values()
    assert blob.metadata.get(SHA256_META) == hashlib.sha256(image.read_bytes()).hexdigest()
    assert len(images_of(fake)) == 1

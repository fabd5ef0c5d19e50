"""Publication on OpenStack through the real openstacksdk against the fake Glance on 127.0.0.1 (no
guest): register privately with the bytes and properties Nova needs, resume after interruptions,
release or remove, what gc makes of what an interruption left, and the CLI's refusals."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from debian_cloud_tests.providers.openstack import OpenStackProvider, publish, retry
from debian_cloud_tests.providers.openstack.gc import collect_garbage
from debian_cloud_tests.providers.openstack.resources import EXPIRES_KEY, RUN_ID_KEY, SHA256_KEY

from debian_cloud_tests.expiry import parse as parse_expiry
from debian_cloud_tests.junitprops import Prop
from debian_cloud_tests.publication import errors, state, steps
from debian_cloud_tests.spec import Arch, LaunchSpec

from .fakes.openstack_cloud import REGION, FakeOpenStack, running_openstack
from .test_publication_aws import SIGNALS, reports_on_every_copy, stop_mid_upload


@pytest.fixture
def ostack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeOpenStack]:
    monkeypatch.setenv("DCT_SOURCE_ADDRESS", "127.0.0.1")  # never an echo service off this host
    monkeypatch.setattr(retry, "sleep", lambda seconds: time.sleep(0.01))
    with running_openstack() as fake:
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(fake.clouds_yaml(tmp_path / "clouds.yaml")))
        monkeypatch.setenv("OS_CLOUD", "fake")
        yield fake


def make_image(tmp_path: Path, release: str = "bookworm", arch: str = "amd64",
               firmware: str = "bios", vendor: str = "genericcloud", size: int = 1 << 20) -> Path:
    """A raw image (*size* random bytes, a hole of 1 MiB, a tail) and its build manifest."""
    version = {"bookworm": "12", "trixie": "13"}[release]
    path = tmp_path / f"debian-{version}-{vendor}-{arch}.raw"
    path.write_bytes(os.urandom(size) + bytes(1 << 20) + os.urandom(12345))
    path.with_suffix(".json").write_text(json.dumps({
        "name": path.stem, "release": release, "vendor": vendor, "arch": arch,
        "firmware": firmware, "build_date": "2026-12-06T10:00:00Z",
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}))
    return path


@pytest.fixture
def image(tmp_path: Path) -> Path:
    return make_image(tmp_path)


def job(image: Path) -> steps.Job:
    return steps.Job(image, state.default_path(image, "openstack"), steps.publisher("openstack"))


def register(image: Path) -> state.Publication:
    return steps.register(job(image), image.with_suffix(".json"), None, [REGION])


def kept(image: Path) -> dict[str, Any]:
    return json.loads(state.default_path(image, "openstack").read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize(("release", "arch", "firmware", "expected"), [
    ("bookworm", "amd64", "bios", {"os_version": "12", "architecture": "x86_64"}),
    ("trixie", "arm64", "uefi", {"os_version": "13", "architecture": "aarch64",
                                 "hw_firmware_type": "uefi"}),
])
def test_registered_privately_with_the_bytes_and_properties(
        ostack: FakeOpenStack, tmp_path: Path, release: str, arch: str, firmware: str,
        expected: dict[str, str]) -> None:
    image = make_image(tmp_path, release, arch, firmware)
    before = datetime.now(UTC)
    pub = register(image)
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    (found,) = ostack.created_images()
    assert pub.uploaded_sha256 == digest and pub.copies == {REGION: found["id"]}
    assert ostack.image_data[found["id"]] == image.read_bytes()
    assert (found["status"], found["visibility"]) == ("active", "private")
    assert (found["disk_format"], found["container_format"]) == ("raw", "bare")
    assert found["name"] == f"{image.stem}-20261206-{digest[:12]}" and found["min_disk"] == 1
    assert {k: found[k] for k in ("os_distro", "hw_disk_bus", "hw_vif_model", "hw_qemu_guest_agent")} \
        == {"os_distro": "debian", "hw_disk_bus": "virtio", "hw_vif_model": "virtio",
            "hw_qemu_guest_agent": "no"}
    assert {k: v for k, v in found.items() if k in expected or k == "hw_firmware_type"} == expected
    assert found[RUN_ID_KEY] == pub.run_id and found[SHA256_KEY] == digest
    expires = parse_expiry(found[EXPIRES_KEY])
    assert expires and before + timedelta(hours=2) < expires < before + timedelta(hours=4)
    assert kept(image)["copies"] == {REGION: found["id"]} and kept(image)["upload"] == {}


def test_the_provider_records_which_copy_it_tested(ostack: FakeOpenStack, image: Path) -> None:
    pub = register(image)
    assert job(image).cloud.test_args(pub, REGION) == [
        "--provider=openstack", f"--image={pub.copies[REGION]}", f"--region={REGION}",
        "--os-cloud=fake"]
    provider = OpenStackProvider()
    provider.validate(LaunchSpec(image=pub.copies[REGION], arch=Arch.AMD64, options={}))
    props = provider.properties()
    assert (props[Prop.REGISTERED_IMAGE], props[Prop.REGISTERED_REGION], props[Prop.IMAGE_SHA256]) \
        == (pub.copies[REGION], REGION, pub.uploaded_sha256)
    other = OpenStackProvider()  # an image publish did not upload records none of it
    other.validate(LaunchSpec(image="debian-12-genericcloud-amd64", arch=Arch.AMD64, options={}))
    assert Prop.REGISTERED_IMAGE not in other.properties()


def test_a_publish_verdict_makes_it_public(ostack: FakeOpenStack, image: Path, tmp_path: Path) -> None:
    pub = register(image)
    policy = reports_on_every_copy(pub, state.default_path(image, "openstack"), "openstack", tmp_path)
    assert steps.release(job(image), policy, tmp_path / "verdict.json") == 0
    (found,) = ostack.created_images()
    assert found["visibility"] == "public" and EXPIRES_KEY not in found
    assert found[SHA256_KEY] == pub.uploaded_sha256 and ostack.image_data[found["id"]] == image.read_bytes()
    assert kept(image)["outcome"] == "released"
    assert kept(image)["released"] == [f"visibility:{REGION}:{found['id']}=public"]
    # released: gc leaves it, however late
    assert collect_garbage(datetime.now(UTC) + timedelta(days=30)) == []
    assert len(ostack.created_images()) == 1


def test_nothing_tested_holds_and_removes_it(ostack: FakeOpenStack, image: Path, tmp_path: Path) -> None:
    register(image)
    assert steps.release(job(image), None, tmp_path / "verdict.json") == 1
    assert ostack.created_images() == [] and ostack.image_data == {}
    assert kept(image)["outcome"] == "removed" and kept(image)["copies"] == {}


def cut_upload(ostack: FakeOpenStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next upload stops halfway (Ctrl-C): Glance is left with an image "saving"."""
    send = publish._send

    def cut(conn: Any, image: Any, raw: Path, size: int) -> None:
        monkeypatch.setattr(publish, "_send", send)
        ostack.images[image.id]["status"] = "saving"
        ostack.image_data[image.id] = raw.read_bytes()[: size // 2]
        raise KeyboardInterrupt

    monkeypatch.setattr(publish, "_send", cut)


def test_an_interrupted_upload_is_deleted_and_done_again(ostack: FakeOpenStack, image: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    cut_upload(ostack, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        register(image)
    left = kept(image)
    assert left["upload"]["state"] == "uploading" and left["copies"] == {}
    (partial,) = ostack.created_images()
    assert partial["id"] == left["upload"]["image"] and partial["status"] == "saving"
    pub = register(image)
    assert pub.run_id == left["run_id"]
    (found,) = ostack.created_images()
    assert found["id"] != partial["id"] and pub.copies == {REGION: found["id"]}
    assert found["status"] == "active" and ostack.image_data[found["id"]] == image.read_bytes()
    assert kept(image)["upload"] == {}


def test_an_upload_whose_state_was_not_saved_is_adopted(ostack: FakeOpenStack, image: Path) -> None:
    """Stopped after the upload, before the state said so: the active image of this run and these
    bytes is taken as it is, not uploaded twice."""
    pub = register(image)
    path = state.default_path(image, "openstack")
    lost = json.loads(path.read_text())
    lost["copies"] = {}
    path.write_text(json.dumps(lost))
    again = register(image)
    assert again.copies == pub.copies and len(ostack.created_images()) == 1
    assert ostack.calls.count("images.upload") == 1


def test_a_lost_answer_to_the_upload_is_not_an_error(ostack: FakeOpenStack, image: Path) -> None:
    """Glance took the bytes but the answer was lost (503): the retry is refused (409), the
    image is active, so the upload is done."""
    ostack.lost_replies["images.upload"] = 1
    pub = register(image)
    (found,) = ostack.created_images()
    assert pub.copies == {REGION: found["id"]} and ostack.image_data[found["id"]] == image.read_bytes()


def test_gc_collects_an_interrupted_upload_once_it_expires(ostack: FakeOpenStack, image: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    cut_upload(ostack, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        register(image)
    (partial,) = ostack.created_images()
    assert collect_garbage(datetime.now(UTC)) == []  # not expired yet
    assert collect_garbage(datetime.now(UTC) + timedelta(hours=4)) == [
        f"image {partial['name']} ({partial['id']})"]
    assert ostack.created_images() == []
    assert len(ostack.images) == 2, "the images publish did not make are left alone"


def _publish_cli(ostack: FakeOpenStack, image: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "debian_cloud_tests.pipeline.cli", "publish",
                           str(image), "--cloud=openstack", *args], capture_output=True, text=True,
                          env=dict(os.environ), timeout=120)


def test_no_permission_to_upload_is_one_line_and_nothing_is_left(ostack: FakeOpenStack,
                                                                 image: Path) -> None:
    ostack.fail("images.upload", 403, "You are not authorized to upload image data.")
    proc = _publish_cli(ostack, image, f"--region={REGION}", "--step=register")
    assert proc.returncode == errors.PublicationPermissionError.exit_code, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "upload image" in proc.stderr and "not authorized" in proc.stderr
    assert "images.create" in ostack.calls and ostack.created_images() == []  # the image removed
    assert not state.default_path(image, "openstack").exists()


def test_an_image_over_the_clouds_size_cap_is_one_line_and_nothing_is_left(
        ostack: FakeOpenStack, image: Path) -> None:
    ostack.image_size_cap = 1 << 20
    proc = _publish_cli(ostack, image, f"--region={REGION}", "--step=register")
    assert proc.returncode == errors.ImageTooLargeError.exit_code, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Glance refused the image as too large (HTTP 413" in proc.stderr
    assert ostack.created_images() == [] and not state.default_path(image, "openstack").exists()


def test_an_unknown_region_is_one_line_and_nothing_is_made(ostack: FakeOpenStack, image: Path) -> None:
    proc = _publish_cli(ostack, image, f"--region={REGION}", "--region=RegionTwo", "--step=register")
    assert proc.returncode == errors.UnknownRegionError.exit_code, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "RegionTwo" in proc.stderr
    assert f"known: {REGION}" in proc.stderr
    assert "images.create" not in ostack.calls and ostack.created_images() == []
    assert not state.default_path(image, "openstack").exists()


def test_no_permission_to_make_it_public_keeps_it_private_to_try_again(
        ostack: FakeOpenStack, image: Path, tmp_path: Path) -> None:
    pub = register(image)
    policy = reports_on_every_copy(pub, state.default_path(image, "openstack"), "openstack", tmp_path)
    ostack.fail("images.update", 403, "Forbidden to publicize image.")
    with pytest.raises(errors.PublicationPermissionError, match="needs the admin role"):
        steps.release(job(image), policy, tmp_path / "verdict.json")
    (found,) = ostack.created_images()
    assert found["visibility"] == "private" and EXPIRES_KEY in found
    assert kept(image)["outcome"] == "" and kept(image)["released"] == []
    assert steps.release(job(image), policy, tmp_path / "verdict.json") == 0  # with the right role
    assert ostack.created_images()[0]["visibility"] == "public"


@SIGNALS
def test_a_publish_stopped_mid_upload_resumes_with_one_image(
        ostack: FakeOpenStack, image: Path, monkeypatch: pytest.MonkeyPatch, sig: Any) -> None:
    upload = FakeOpenStack._images_upload

    def slow_upload(fake: FakeOpenStack, *args: Any, **kwargs: Any) -> Any:
        time.sleep(3)  # a long upload, so that the signal lands in it
        return upload(fake, *args, **kwargs)

    monkeypatch.setattr(FakeOpenStack, "_images_upload", slow_upload)
    stop_mid_upload(image, "openstack", [f"--region={REGION}"], dict(os.environ), sig)
    monkeypatch.setattr(FakeOpenStack, "_images_upload", upload)
    resumed = _publish_cli(ostack, image, f"--region={REGION}", "--step=register")
    assert resumed.returncode == 0, resumed.stderr
    (made,) = ostack.created_images()  # the interrupted one deleted, one uploaded whole
    assert made["status"] == "active" and ostack.image_data[made["id"]] == image.read_bytes()

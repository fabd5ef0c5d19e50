"""Publication on EC2 through boto3 against moto (no guest: tests/test_publication_aws_e2e.py
boots the registered bytes): register privately in two regions, resume after interruptions,
release every copy or remove them all, and what gc makes of what an interruption left."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from debian_cloud_tests.providers.aws import gc as aws_gc
from debian_cloud_tests.providers.aws import publish

from debian_cloud_tests.publication import errors, state, steps

from .fakes.aws_world import AwsWorld
from .fakes.moto_ec2 import MotoEc2, leftovers
from .fakes.moto_images import Images
from .test_gate_completeness import ours

pytest_plugins = ["tests.fakes.aws_env"]

HOME, OTHER = "eu-west-3", "us-east-1"


class Cloud:
    def __init__(self, moto: MotoEc2, images: Images, tmp: Path) -> None:
        self.moto, self.images, self.tmp = moto, images, tmp

    def images_of(self, region: str) -> list[dict]:
        """The AMIs publication made (not the one the emulated EC2 starts with)."""
        return self.moto.client(region).describe_images(Owners=["self"], Filters=[
            {"Name": "tag-key", "Values": ["dct:run-id"]}])["Images"]

    def snapshots_of(self, region: str) -> list[dict]:
        ec2 = self.moto.client(region)
        return ec2.describe_snapshots(OwnerIds=["self"], Filters=[
            {"Name": "tag-key", "Values": ["dct:run-id"]}])["Snapshots"]


@pytest.fixture
def cloud(aws: AwsWorld, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Cloud:
    return Cloud(aws.moto, Images(monkeypatch), tmp_path)


@pytest.fixture
def image(tmp_path: Path) -> Path:
    """A raw image of 2.5 blocks and a bit: data, a hole, data ending mid-block; its manifest."""
    path = tmp_path / "debian-12-ec2-amd64.raw"
    block = publish.BLOCK
    path.write_bytes(os.urandom(block) + bytes(block) + os.urandom(block // 2 + 100))
    path.with_suffix(".json").write_text(json.dumps({
        "name": "debian-12-ec2-amd64", "release": "bookworm", "vendor": "ec2", "arch": "amd64",
        "firmware": "bios", "build_date": "2026-12-06T10:00:00Z",
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}))
    return path


def job(image: Path) -> steps.Job:
    return steps.Job(image, state.default_path(image, "aws"), steps.publisher("aws"))


def register(image: Path) -> state.Publication:
    return steps.register(job(image), image.with_suffix(".json"), None, [HOME, OTHER])


def reports_on_every_copy(pub: state.Publication, state_path: Path, provider: str, where: Path) -> Path:
    """What a test run on each copy reports (tests/test_publication_aws_e2e.py runs them), kept
    in *pub*'s state as the test step keeps it; an empty policy to release with."""
    for region, image_id in pub.copies.items():
        pub.tested[region] = str(ours(where, f"{region}.xml", provider=provider, registered_image=image_id,
                                      registered_region=region, image_sha256=pub.uploaded_sha256))
    pub.save(state_path)
    policy = where / "policy.toml"
    policy.write_text("")
    return policy


def tags(resource: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def test_registered_privately_in_each_region_with_the_bytes_uploaded(cloud: Cloud, image: Path) -> None:
    pub = register(image)
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    assert pub.uploaded_sha256 == digest and set(pub.copies) == {HOME, OTHER}
    for region, ami in pub.copies.items():
        (found,) = cloud.images_of(region)
        assert found["ImageId"] == ami and found["Public"] is False
        assert (found["BootMode"], found["Architecture"]) == ("legacy-bios", "x86_64")
        assert tags(found)["dct:run-id"] == pub.run_id and tags(found)["dct:uploaded-sha256"] == digest
        assert "dct:expires" in tags(found)
        # what an instance of each copy boots: the bytes uploaded, then zeros
        disk = cloud.images.disk_of(cloud.moto.backend(region), ami, cloud.tmp / f"{region}.disk")
        assert disk is not None
        with disk.open("rb") as f:
            assert hashlib.sha256(f.read(image.stat().st_size)).hexdigest() == digest
            assert f.read().count(0) == disk.stat().st_size - image.stat().st_size
    # only the blocks holding data were sent
    (snapshot,) = cloud.snapshots_of(HOME)
    assert snapshot["SnapshotId"] == pub.upload["snapshot"]


def test_nothing_tested_holds_and_removes_every_copy(cloud: Cloud, image: Path) -> None:
    register(image)
    rc = steps.release(job(image), None, cloud.tmp / "verdict.json")
    assert rc == 1
    for region in (HOME, OTHER):
        assert cloud.images_of(region) == [] and cloud.snapshots_of(region) == []
    assert json.loads(state.default_path(image, "aws").read_text())["outcome"] == "removed"


def test_a_publish_verdict_releases_every_copy(cloud: Cloud, image: Path) -> None:
    import boto3

    pub = register(image)
    policy = reports_on_every_copy(pub, state.default_path(image, "aws"), "aws", cloud.tmp)
    assert steps.release(job(image), policy, cloud.tmp / "verdict.json") == 0
    for region, ami in pub.copies.items():
        (found,) = cloud.images_of(region)
        assert found["Public"] is True and "dct:expires" not in tags(found)
        ssm = boto3.client("ssm", region_name=region, endpoint_url=cloud.moto.url)
        for name in ("12", "bookworm"):
            value = ssm.get_parameter(Name=f"{publish.SSM_PREFIX}/{name}/ec2/latest/amd64")
            assert value["Parameter"]["Value"] == ami
    # released: gc leaves it, however late
    late = datetime.now(UTC) + timedelta(days=30)
    assert aws_gc.collect_garbage(HOME, late) == []
    assert len(cloud.images_of(HOME)) == 1


def test_an_interrupted_register_resumes_without_a_second_copy(cloud: Cloud, image: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    copy = publish.AwsPublisher._copy

    def interrupted(self, pub, region):  # Ctrl-C as the copy to the second region starts
        monkeypatch.setattr(publish.AwsPublisher, "_copy", copy)
        raise KeyboardInterrupt

    monkeypatch.setattr(publish.AwsPublisher, "_copy", interrupted)
    with pytest.raises(KeyboardInterrupt):
        register(image)
    kept = json.loads(state.default_path(image, "aws").read_text())
    assert list(kept["copies"]) == [HOME] and kept["upload"]["state"] == "complete"
    pub = register(image)
    assert set(pub.copies) == {HOME, OTHER} and pub.copies[HOME] == kept["copies"][HOME]
    assert [len(cloud.images_of(r)) for r in (HOME, OTHER)] == [1, 1]
    assert len(cloud.snapshots_of(HOME)) == 1


def test_an_upload_cut_short_is_discarded_and_done_again(cloud: Cloud, image: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = publish._blocks

    def cut(raw: Path):
        monkeypatch.setattr(publish, "_blocks", blocks)
        yield next(blocks(raw))
        raise KeyboardInterrupt

    monkeypatch.setattr(publish, "_blocks", cut)
    with pytest.raises(KeyboardInterrupt):
        register(image)
    partial = json.loads(state.default_path(image, "aws").read_text())["upload"]
    assert partial["state"] == "uploading"
    pub = register(image)
    assert pub.upload["snapshot"] != partial["snapshot"]
    assert [s["SnapshotId"] for s in cloud.snapshots_of(HOME)] == [pub.upload["snapshot"]]


def test_gc_collects_what_an_interrupted_publish_left_once_it_expires(cloud: Cloud, image: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(self, pub, region):
        raise KeyboardInterrupt

    monkeypatch.setattr(publish.AwsPublisher, "_copy", interrupted)
    with pytest.raises(KeyboardInterrupt):
        register(image)
    assert aws_gc.collect_garbage(HOME, datetime.now(UTC)) == []  # not expired yet
    late = datetime.now(UTC) + timedelta(hours=4)
    deleted = aws_gc.collect_garbage(HOME, late)
    assert {d.split("-")[0] for d in deleted} == {"ami", "snap"}, deleted
    assert cloud.images_of(HOME) == [] and cloud.snapshots_of(HOME) == []


def _publish_cli(cloud: Cloud, image: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **{k: v for k, v in cloud.moto.env(cloud.tmp).items() if v}}
    return subprocess.run([sys.executable, "-m", "debian_cloud_tests.pipeline.cli", "publish",
                           str(image), "--cloud=aws", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def test_an_unknown_region_is_one_line_and_nothing_is_made(cloud: Cloud, image: Path) -> None:
    proc = _publish_cli(cloud, image, f"--region={HOME}", "--region=xx-nowhere-1", "--step=register")
    assert proc.returncode == errors.UnknownRegionError.exit_code, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "xx-nowhere-1" in proc.stderr
    assert cloud.images_of(HOME) == [] and cloud.snapshots_of(HOME) == []
    assert not state.default_path(image, "aws").exists()


def test_no_permission_to_register_is_one_line_and_nothing_is_left(cloud: Cloud, image: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.responses.amis import AmisResponse

    def refused(response):
        raise EC2ClientError("UnauthorizedOperation", "You are not authorized to perform this operation.")

    monkeypatch.setattr(AmisResponse, "register_image", refused)
    proc = _publish_cli(cloud, image, f"--region={HOME}", "--step=register")
    assert proc.returncode == errors.PublicationPermissionError.exit_code, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "register_image" in proc.stderr
    assert cloud.images_of(HOME) == [] and cloud.snapshots_of(HOME) == []  # the upload removed
    assert not state.default_path(image, "aws").exists()


def test_an_image_too_large_for_a_snapshot_is_refused_before_any_upload(
        cloud: Cloud, image: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publish, "MAX_GIB", 0)
    with pytest.raises(errors.ImageTooLargeError, match="more than an EBS snapshot holds"):
        register(image)
    assert cloud.snapshots_of(HOME) == [] and not state.default_path(image, "aws").exists()


def test_a_state_file_of_another_image_is_refused(cloud: Cloud, image: Path, tmp_path: Path) -> None:
    register(image)
    other = tmp_path / "other.raw"
    other.write_bytes(b"x" * 1000)
    other.with_suffix(".json").write_text(json.dumps({"arch": "amd64"}))
    proc = _publish_cli(cloud, other, f"--region={HOME}", "--step=register",
                        f"--state={state.default_path(image, 'aws')}")
    assert proc.returncode == errors.PublicationStateError.exit_code, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "is for aws and image" in proc.stderr and "give --state a path of its own" in proc.stderr
    assert len(cloud.images_of(HOME)) == 1  # the first publication's copy there, nothing new


def stop_mid_upload(image: Path, cloud: str, args: list[str], env: dict[str, str],
                    sig: signal.Signals) -> None:
    """`publish --cloud CLOUD --step=register` in a process of its own, stopped by *sig* once its
    state says the upload began (the cloud's emulator is slowed by the test): a cancelled CI job
    (SIGTERM) ends it as interrupted, a SIGKILL at once; either keeps the state file."""
    path = state.default_path(image, cloud)
    proc = subprocess.Popen([sys.executable, "-m", "debian_cloud_tests.pipeline.cli", "publish",
                             str(image), f"--cloud={cloud}", *args, "--step=register"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    while not (path.exists() and json.loads(path.read_text())["upload"].get("state") == "uploading"):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == (130 if sig == signal.SIGTERM else -signal.SIGKILL), err
    if sig == signal.SIGTERM:
        assert err.strip() == "debian-cloud-tests: interrupted", err
    assert json.loads(path.read_text())["upload"]["state"] == "uploading"


SIGNALS = pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])


@SIGNALS
def test_a_publish_stopped_mid_upload_keeps_a_state_it_resumes_from(
        cloud: Cloud, image: Path, monkeypatch: pytest.MonkeyPatch, sig: signal.Signals) -> None:
    from moto.ebs.responses import EBSResponse

    put = EBSResponse.put_snapshot_block

    def slow_put(response):  # a long upload, so that the signal lands in it
        time.sleep(3)
        return put(response)

    monkeypatch.setattr(EBSResponse, "put_snapshot_block", slow_put)
    path = state.default_path(image, "aws")
    env = {**os.environ, **{k: v for k, v in cloud.moto.env(cloud.tmp).items() if v}}
    stop_mid_upload(image, "aws", [f"--region={HOME}"], env, sig)
    left = json.loads(path.read_text())
    assert left["upload"]["state"] == "uploading" and left["copies"] == {}

    monkeypatch.setattr(EBSResponse, "put_snapshot_block", put)
    resumed = _publish_cli(cloud, image, f"--region={HOME}", "--step=register")
    assert resumed.returncode == 0, resumed.stderr
    done = json.loads(path.read_text())
    assert done["upload"]["state"] == "complete" and done["run_id"] == left["run_id"]
    assert done["upload"]["snapshot"] != left["upload"]["snapshot"]
    assert [s["SnapshotId"] for s in cloud.snapshots_of(HOME)] == [done["upload"]["snapshot"]]
    assert [i["ImageId"] for i in cloud.images_of(HOME)] == [done["copies"][HOME]]


def test_a_publish_stopped_while_testing_a_copy_leaves_no_machine(
        cloud: Cloud, aws: AwsWorld, image: Path) -> None:
    """SIGTERM (a cancelled CI job) while the suites run on a copy: the run on the cloud gets to
    remove its instance, key pair and group; the copy stays registered and untested, to resume."""
    pub = register(image)
    aws.hooks.hold_pending()  # the instance never boots: the run waits for it
    env = {**os.environ, **{k: v for k, v in cloud.moto.env(cloud.tmp).items() if v}}
    proc = subprocess.Popen([sys.executable, "-m", "debian_cloud_tests.pipeline.cli", "publish",
                             str(image), "--cloud=aws", "--step=test", f"--output={cloud.tmp}",
                             "--pytest-arg=--boot-timeout=600"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while "run_instances" not in aws.hooks.calls:
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, out[-3000:] + err
    assert leftovers(aws.moto) == {}, "the run on the copy removed what it launched"
    kept = json.loads(state.default_path(image, "aws").read_text())
    assert kept["tested"] == {} and kept["copies"] == pub.copies and kept["outcome"] == ""


def test_a_release_cut_short_is_finished_by_the_next(cloud: Cloud, image: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    pub = register(image)
    policy = reports_on_every_copy(pub, state.default_path(image, "aws"), "aws", cloud.tmp)
    put = publish._call

    def cut(client, action, **kwargs):  # stopped after the first region's launch permission
        if action == "put_parameter":
            raise KeyboardInterrupt
        return put(client, action, **kwargs)

    monkeypatch.setattr(publish, "_call", cut)
    with pytest.raises(KeyboardInterrupt):
        steps.release(job(image), policy, cloud.tmp / "verdict.json")
    assert json.loads(state.default_path(image, "aws").read_text())["outcome"] == ""
    monkeypatch.setattr(publish, "_call", put)
    assert steps.release(job(image), policy, cloud.tmp / "verdict.json") == 0
    assert all(found["Public"] for region in (HOME, OTHER) for found in cloud.images_of(region))

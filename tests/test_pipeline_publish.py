"""The publish step: refused without a passing verdict for these exact bytes, done against moto."""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from debian_cloud_tests.gate.cli import main as gate_main
from debian_cloud_tests.pipeline import publishers
from debian_cloud_tests.pipeline.errors import PublishRefusedError, UnknownPublisherError

BUCKET = "images"
JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="{failures}" skipped="0" tests="2" time="1">
<properties><property name="provider" value="qemu"/><property name="arch" value="amd64"/>
<property name="run_id" value="{run_id}"/><property name="image_sha256" value="{sha}"/></properties>
<testcase classname="bvt" name="test_login" time="0.1">
<properties><property name="check_id" value="bvt.ssh_login_default_user"/></properties></testcase>
<testcase classname="config" name="test_sshd" time="0.1">
<properties><property name="check_id" value="config.sshd_setting[PasswordAuthentication]"/></properties>
{failure}</testcase>
</testsuite></testsuites>
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def moto_s3_server() -> Iterator[Any]:
    """An S3 endpoint on 127.0.0.1 (moto) with bucket BUCKET; boto3 reaches it through the env."""
    server_mod = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    port = _free_port()
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true"}
    try:
        with pytest.MonkeyPatch.context() as mp:
            for key, value in env.items():
                mp.setenv(key, value)
            client = boto3.client("s3")
            client.create_bucket(Bucket=BUCKET)
            yield client
    finally:
        server.stop()


@pytest.fixture(scope="module")
def moto_s3():
    yield from moto_s3_server()


def _image(tmp_path: Path, content: bytes = b"\0" * 4096 + b"debian") -> tuple[Path, Path, str]:
    image = tmp_path / "debian-12-genericcloud-amd64.raw"
    image.write_bytes(content)
    sha = hashlib.sha256(content).hexdigest()
    manifest = tmp_path / "debian-12-genericcloud-amd64.json"
    manifest.write_text(json.dumps({"name": "debian-12-genericcloud-amd64", "release": "bookworm",
                                    "vendor": "genericcloud", "arch": "amd64", "sha256": sha}))
    return image, manifest, sha


def _verdict(tmp_path: Path, sha: str, failed: bool = False) -> Path:
    junit = tmp_path / "results.xml"
    failure = '<failure message="PasswordAuthentication is yes">x</failure>' if failed else ""
    junit.write_text(JUNIT.format(failures=int(failed), run_id="r1", sha=sha, failure=failure))
    out = tmp_path / "gate.json"
    rc = gate_main([str(junit), "--image-sha256", sha, "--json", str(out), "-q"])
    assert rc == (1 if failed else 0)
    return out


def _keys(client) -> list[str]:
    return [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def test_refused_on_hold(moto_s3, tmp_path):
    image, manifest, sha = _image(tmp_path)
    verdict = _verdict(tmp_path, sha, failed=True)
    with pytest.raises(PublishRefusedError, match="'hold'") as exc:
        publishers.publish(image, manifest, verdict, f"s3://{BUCKET}/hold")
    assert exc.value.exit_code == 50
    assert not [k for k in _keys(moto_s3) if k.startswith("hold/")]


def test_refused_when_the_verdict_is_for_other_bytes(moto_s3, tmp_path):
    image, manifest, sha = _image(tmp_path)
    verdict = _verdict(tmp_path, sha)
    image.write_bytes(image.read_bytes() + b"tampered")
    manifest.write_text(json.dumps({"sha256": hashlib.sha256(image.read_bytes()).hexdigest()}))
    with pytest.raises(PublishRefusedError, match="not this image"):
        publishers.publish(image, manifest, verdict, f"s3://{BUCKET}/mismatch")
    assert not [k for k in _keys(moto_s3) if k.startswith("mismatch/")]


def test_refused_when_the_manifest_is_for_other_bytes(moto_s3, tmp_path):
    image, manifest, sha = _image(tmp_path)
    verdict = _verdict(tmp_path, sha)
    manifest.write_text(json.dumps({"sha256": "0" * 64}))
    with pytest.raises(PublishRefusedError, match="manifest"):
        publishers.publish(image, manifest, verdict, f"s3://{BUCKET}/manifest")


def test_published_on_publish(moto_s3, tmp_path):
    image, manifest, sha = _image(tmp_path)
    verdict = _verdict(tmp_path, sha)
    written = publishers.publish(image, manifest, verdict, f"s3://{BUCKET}/bookworm/daily")
    key = "bookworm/daily/debian-12-genericcloud-amd64.raw"
    assert written[0] == f"s3://{BUCKET}/{key}"
    assert {key, key + ".manifest.json", key + ".gate.json"} <= set(_keys(moto_s3))
    head = moto_s3.head_object(Bucket=BUCKET, Key=key)
    assert head["Metadata"]["sha256"] == sha and head["Metadata"]["gate-verdict"] == "publish"
    assert head["Metadata"]["vendor"] == "genericcloud"
    body = moto_s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == sha


def test_unknown_destination(tmp_path):
    image, manifest, sha = _image(tmp_path)
    verdict = _verdict(tmp_path, sha)
    with pytest.raises(UnknownPublisherError) as exc:
        publishers.publish(image, manifest, verdict, "ftp://example.org/images")
    assert exc.value.exit_code == 52


def test_s3_is_a_publisher():
    assert "s3" in publishers.available()


@pytest.mark.parametrize("rc", [2, 3, 4, 5, 33])
def test_the_pipeline_never_gates_a_test_run_that_did_not_end_on_its_own(
        tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], rc: int) -> None:
    """An interrupted run (or one pytest could not run) stops the pipeline with its own code,
    whatever its report says: a partial report must never reach the gate."""
    from types import SimpleNamespace

    from debian_cloud_tests.pipeline import run as pipeline

    image, manifest, sha = _image(tmp_path)
    junit = tmp_path / "results.xml"
    junit.write_text(JUNIT.format(failures=0, run_id="r1", sha=sha, failure=""))  # would publish
    monkeypatch.setattr(pipeline, "build", lambda *a, **k: SimpleNamespace(image=image, sha256=sha,
                                                                          manifest=manifest))
    monkeypatch.setattr(pipeline, "test_image", lambda *a, **k: (rc, junit))
    gated = []
    monkeypatch.setattr(pipeline, "gate_main", lambda argv: gated.append(argv) or 0)
    spec = SimpleNamespace(name="debian-12-genericcloud-amd64", classes=lambda: ["DEBIAN"])
    assert pipeline.run(spec, pipeline.Options(output=tmp_path)) == rc  # type: ignore[arg-type]
    assert gated == []
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert f"did not run to their end (pytest exit {rc}): not gating, not publishing" in last

"""End to end: an image built with FAI passes the gated suites and is published; a
config-space class that enables password login makes the pipeline hold and publish nothing.

Two builds and two boots (QEMU, one at a time): minutes under TCG.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from debian_cloud_tests.gate.cli import main as gate_main
from debian_cloud_tests.pipeline import publishers
from debian_cloud_tests.plugin import suites_dir

from .conftest import run_suites
from .test_e2e_qemu import SLOW_SUITES
from .test_pipeline_publish import BUCKET, moto_s3_server

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "examples" / "policy.toml"
ACCEPT_SLOW_SUITES = f"""
[[accept_filter]]
provider = "qemu"
suites = {list(SLOW_SUITES)!r}
reason = "the reboots and a second instance of a good image are proven by the demo and every cloud"
"""
pytestmark = pytest.mark.e2e


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "building with FAI needs root"
    for prog in ("fai-diskimage", "qemu-system-x86_64"):
        if not shutil.which(prog):
            return f"{prog} not installed"
    return None


@pytest.fixture(scope="module")
def fai_host() -> None:
    why = _why_not()
    if why:
        if os.environ.get("DCT_E2E") == "require":
            pytest.fail(f"end-to-end tests required but impossible here: {why}")
        pytest.skip(why)


@pytest.fixture(scope="module")
def s3(fai_host):
    yield from moto_s3_server()


def _build(out: Path, vendor: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "debian_cloud_tests.faibuild.cli", "--release", "bookworm",
                           "--vendor", vendor, "--arch", "amd64", "--output", str(out)],
                          capture_output=True, text=True, timeout=1800, check=False)


@pytest.mark.cost(450)
def test_fai_image_passes_the_gated_suites_and_is_published(tmp_path, s3):
    """The EC2 image: its cloud is emulated from its name, and as an Azure VM it fails (one FAI
    build serves the pipeline and the vendor image's cross-check; test_vendor_images_e2e repeats
    its run on EC2 in the full matrix)."""
    out = tmp_path / "images"
    proc = _build(out, "ec2")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    image = out / "debian-12-ec2-amd64.qcow2"
    meta = json.loads((out / "debian-12-ec2-amd64.json").read_text())
    assert meta["classes"][-1] == "CLEANUP" and "cloud-init" in meta["packages"]
    assert (out / meta["build_log"]).stat().st_size > 0

    # the suites the policy gates on; the reboots and a second instance of a good image are
    # proven by the demo's run and every cloud's
    run = run_suites(tmp_path, "--provider=qemu", f"--image={image}",
                     *(f"--ignore={suites_dir() / s}" for s in SLOW_SUITES), timeout=1800)
    assert run.rc == 0, run.explain()
    assert run.props.get("image_sha256") == meta["sha256"]
    assert run.props["datasource"] == "ec2", run.props
    assert run.checks["cloud_init.datasource_expected"] == "passed", run.explain()

    # Debian's policy holds a filtered run; this pipeline's policy is Debian's plus that filter,
    # accepted by name
    gate = [str(tmp_path / "results.xml"), "--image-sha256", meta["sha256"], "-q"]
    assert gate_main([*gate, "--policy", str(POLICY)]) == 1
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY.read_text() + ACCEPT_SLOW_SUITES)
    verdict = tmp_path / "gate.json"
    assert gate_main([*gate, "--policy", str(policy), "--json", str(verdict)]) == 0
    notes = json.loads(verdict.read_text())["notes"]
    assert any("accepted by [[accept_filter]]" in n for n in notes), notes
    written = publishers.publish(image, out / "debian-12-ec2-amd64.json", verdict,
                                 f"s3://{BUCKET}/e2e")
    head = s3.head_object(Bucket=BUCKET, Key="e2e/debian-12-ec2-amd64.qcow2")
    assert head["Metadata"]["sha256"] == meta["sha256"], written

    # the vendor image on another cloud, a deliberate cross-check given on the command line: its
    # datasource list has no Azure, so nothing reports ready to Azure's wireserver
    cross = tmp_path / "as-azure"
    cross.mkdir()
    run = run_suites(cross, "--provider=qemu", f"--image={image}", "--datasource=azure",
                     str(suites_dir() / "metadata"), select=str(suites_dir() / "cloud_init"))
    assert run.rc == 1, run.explain()
    assert "cloud-init used 'DataSourceNone', expected Azure" in \
        run.messages["cloud_init.datasource_expected"], run.explain()
    assert run.checks["metadata.provisioning_reported_ready"] == "failed", run.explain()


# the pipeline's hold path without a build: tests/test_pipeline_publish.py
@pytest.mark.matrix
@pytest.mark.cost(300)
def test_password_login_class_makes_the_pipeline_hold(tmp_path, s3):
    out = tmp_path / "images"
    proc = subprocess.run([sys.executable, "-m", "debian_cloud_tests.pipeline.cli", "pipeline",
                           "--release", "bookworm", "--vendor", "genericcloud", "--arch", "amd64",
                           "--format", "raw", "--class", "DEFECT_SSH_PASSWORD", "--output", str(out),
                           "--publish-to", f"s3://{BUCKET}/defect"],
                          capture_output=True, text=True, timeout=3600, cwd=tmp_path, check=False)
    assert proc.returncode == 1, proc.stdout[-4000:] + proc.stderr[-2000:]
    verdict = json.loads((out / "debian-12-genericcloud-amd64-defect-ssh-password.gate.json").read_text())
    assert verdict["verdict"] == "hold"
    assert verdict["checks"]["config.sshd_setting[passwordauthentication]"] == "failed", verdict["checks"]
    assert "not published" in proc.stdout
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="defect/")
    assert not listed.get("Contents")


@pytest.mark.matrix
@pytest.mark.cost(1800)
def test_pipeline_over_every_vendor_publishes_only_together(tmp_path, s3):
    """Every vendor image built, each tested under its own cloud's datasource (two at a time, one
    vCPU each), gated each, and all published once every verdict is publish."""
    out = tmp_path / "images"
    proc = subprocess.run([sys.executable, "-m", "debian_cloud_tests.pipeline.cli", "pipeline",
                           "--release", "bookworm", "--vendor", "all", "--output", str(out),
                           "--jobs", "2", "--pytest-arg=--instance-type=1x1024",
                           "--publish-to", f"s3://{BUCKET}/matrix"],
                          capture_output=True, text=True, timeout=5400, cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    matrix = json.loads((out / "matrix.json").read_text())
    assert matrix["verdict"] == "publish"
    vendors = {image["vendor"]: image for image in matrix["images"]}
    assert set(vendors) == {"generic", "genericcloud", "nocloud", "ec2", "gce", "azure"}
    for vendor, image in vendors.items():
        assert image["verdict"] == "publish" and image["tests_rc"] == 0, image
        runs = json.loads((out / f"debian-12-{vendor}-amd64.gate.json").read_text())
        assert runs["verdict"] == "publish"
        head = s3.head_object(Bucket=BUCKET, Key=f"matrix/debian-12-{vendor}-amd64.qcow2")
        assert head["Metadata"]["sha256"] == image["sha256"]
    datasources = {vendor: _junit_datasource(out / f"debian-12-{vendor}-amd64.results.xml")
                   for vendor in vendors}
    assert datasources == {"generic": "nocloud", "genericcloud": "nocloud", "nocloud": "nocloud",
                           "ec2": "ec2", "gce": "gce", "azure": "azure"}


def _junit_datasource(report: Path) -> str:
    from debian_cloud_tests.gate import junit

    return {run.prop("datasource") for run in junit.parse(report)}.pop()

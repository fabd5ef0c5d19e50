"""End to end: images built by the FAI driver for one cloud each boot under QEMU with that cloud's
datasource emulated (chosen from the image's name) and pass every suite that applies (an image for
one cloud booted as another's fails the datasource check: test_pipeline_e2e).

One FAI build (about 90 s) and one or two boots per test, under TCG.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from debian_cloud_tests.plugin import suites_dir

from .conftest import SuiteRun, run_suites
from .test_datasources_e2e import DHCP_PROBE, SKIP_OK, SLOW_SUITES, every_suite_and
from .test_pipeline_e2e import fai_host  # noqa: F401  (the fixture)

pytestmark = pytest.mark.e2e


def build(vendor: str, out: Path, suffix: str = "qcow2") -> Path:
    """The FAI driver's bookworm amd64 image for *vendor* (its manifest checked)."""
    proc = subprocess.run([sys.executable, "-m", "debian_cloud_tests.faibuild.cli", "--release",
                           "bookworm", "--vendor", vendor, "--arch", "amd64", "--output", str(out)],
                          capture_output=True, text=True, timeout=1800, check=False)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    name = f"debian-12-{vendor}-amd64"
    meta = json.loads((out / f"{name}.json").read_text())
    assert "cloud-init" in meta["packages"], meta["packages"]
    assert meta["image"] == f"{name}.{suffix}", meta
    return out / f"{name}.{suffix}"



def run_every_suite(workdir: Path, image: Path, *extra: str) -> SuiteRun:
    workdir.mkdir()
    return run_suites(workdir, "--provider=qemu", f"--image={image}", *extra,
                      *(f"--ignore={suites_dir() / s}" for s in SLOW_SUITES),
                      *every_suite_and("dhcp_domain.py"), timeout=1800)


def assert_passes(run: SuiteRun, datasource: str) -> None:
    assert run.rc == 0, run.explain()
    others = {c: s for c, s in run.checks.items()
              if s != "passed" and not run.messages.get(c, "").startswith(SKIP_OK)}
    assert not others, f"{others}\n{run.messages}"
    assert run.props["datasource"] == datasource, run.props
    assert run.checks["cloud_init.datasource_expected"] == "passed"
    assert run.checks[DHCP_PROBE] == ("passed" if datasource != "nocloud" else "skipped")


@pytest.mark.matrix  # in CI: the pipeline's image is this one, crossed to Azure too (test_pipeline_e2e)
@pytest.mark.cost(250)
def test_ec2_image_passes_on_ec2(tmp_path: Path, fai_host) -> None:  # noqa: F811
    assert_passes(run_every_suite(tmp_path / "ec2", build("ec2", tmp_path / "out")), "ec2")  # from the name


@pytest.mark.matrix  # in CI: the test image on emulated GCE (test_provider_gce_e2e)
@pytest.mark.cost(150)
def test_gce_image_passes_on_gce(tmp_path: Path, fai_host) -> None:  # noqa: F811
    run = run_every_suite(tmp_path / "gce", build("gce", tmp_path / "out"))
    assert_passes(run, "gce")
    assert run.checks["metadata.instance_type_matches"] == "passed"  # read from the metadata server


@pytest.mark.matrix  # in CI: the test image under Azure's datasource (test_datasources_e2e)
@pytest.mark.cost(210)
def test_azure_image_passes_on_azure_and_reports_ready(tmp_path: Path, fai_host) -> None:  # noqa: F811
    run = run_every_suite(tmp_path / "azure", build("azure", tmp_path / "out"))
    assert_passes(run, "azure")
    assert run.checks["metadata.provisioning_reported_ready"] == "passed"


@pytest.mark.matrix
@pytest.mark.cost(250)
def test_nocloud_image_passes_with_a_seed(tmp_path: Path, fai_host) -> None:  # noqa: F811
    assert_passes(run_every_suite(tmp_path / "nocloud", build("nocloud", tmp_path / "out")), "nocloud")


@pytest.mark.matrix  # in CI: the test image under both (test_datasources_e2e)
@pytest.mark.cost(400)
def test_genericcloud_image_passes_on_openstack_and_a_config_drive(tmp_path: Path, fai_host) -> None:  # noqa: F811
    image = build("genericcloud", tmp_path / "out")
    for datasource in ("openstack", "configdrive"):
        assert_passes(run_every_suite(tmp_path / datasource, image, f"--datasource={datasource}"),
                      datasource)

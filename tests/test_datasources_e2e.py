"""End to end: an image booted under QEMU with its cloud's datasource emulated (--datasource)
passes the suites, cloud-init picks that datasource, and the metadata suite finds in the guest
what the emulator served."""

from __future__ import annotations

from pathlib import Path

import pytest

from debian_cloud_tests.plugin import suites_dir

from .conftest import run_suites

pytestmark = pytest.mark.e2e

SKIP_OK = ("not applicable",)
#: suites that reboot or launch a second machine: the NoCloud runs prove them
SLOW_SUITES = ("reboot", "uniqueness")
#: what each emulated cloud names the 1x1024 shape the tests boot
INSTANCE_TYPES = {"ec2": "t2.micro", "gce": "custom-1-1024", "azure": "Standard_B1s",
                  "openstack": "1x1024", "configdrive": "1x1024"}
#: what the genericcloud test image rightly shows on GCE (see test_provider_gce_e2e's
#: INIT_LOCAL_MISS): Debian's gce images resolve metadata.google.internal from /etc/hosts
KNOWN = {"gce": {"cloud_init.log_free_of_warnings"}}


GUEST_PROBES = Path(__file__).parent / "guest_probes"
DHCP_PROBE = "tests.guest_probes.dhcp_domain.test_lease_holds_the_clouds_domain"


def every_suite_and(probe: str) -> tuple[str, ...]:
    """Arguments collecting every suite and a probe of the emulation (tests/guest_probes), which
    is collected without this directory's conftest (it is not a test of this session)."""
    return f"--confcutdir={GUEST_PROBES}", str(suites_dir()), str(GUEST_PROBES / probe)


#: datasources CI proves by another run (these runs are the full matrix's): EC2's by the image FAI
#: builds for it (test_vendor_images_e2e), GCE's and OpenStack's by the emulated clouds' own runs
#: (test_provider_gce_e2e, test_provider_openstack_e2e).  Azure's stays: only this emulation
#: shows the guest's report of ready to the wireserver.
PROVEN_ELSEWHERE = ("ec2", "gce", "openstack")


@pytest.mark.parametrize("datasource", [
    pytest.param(d, marks=(pytest.mark.cost(75), *((pytest.mark.matrix,) if d in PROVEN_ELSEWHERE else ())))
    for d in INSTANCE_TYPES])
def test_emulated_cloud_passes_the_suites(datasource: str, good_image: Path, tmp_path: Path) -> None:
    run = run_suites(tmp_path, "--provider=qemu", f"--image={good_image}",
                     "--image-type=genericcloud", f"--datasource={datasource}",
                     *(f"--ignore={suites_dir() / s}" for s in SLOW_SUITES),
                     *every_suite_and("dhcp_domain.py"))
    known = KNOWN.get(datasource, set())
    assert run.rc == (1 if known else 0), run.explain()
    others = {c: s for c, s in run.checks.items()
              if s != "passed" and not run.messages.get(c, "").startswith(SKIP_OK)}
    assert others == dict.fromkeys(known, "failed"), f"{others}\n{run.messages}"
    if datasource == "gce":
        assert "metadata.google.internal" in run.messages["cloud_init.log_free_of_warnings"]
    for check in ("cloud_init.datasource_expected", "metadata.instance_id_matches",
                  "metadata.hostname_matches", "metadata.user_data_applied",
                  *(("metadata.instance_type_matches",) if datasource != "configdrive" else ()),
                  *(("metadata.provisioning_reported_ready",) if datasource == "azure" else ()),
                  DHCP_PROBE):
        assert run.checks.get(check) == "passed", (check, run.checks.get(check), run.messages.get(check))
    assert run.props["datasource"] == datasource, run.props


@pytest.mark.matrix  # in CI: the FAI-built ec2 image as an Azure VM (test_vendor_images_e2e)
@pytest.mark.cost(300)
def test_azure_image_lacking_azure_in_its_datasource_list_fails(image_factory, tmp_path: Path) -> None:
    """Negative control: an azure image whose datasource_list lacks Azure (it holds EC2's alone)
    booted as an Azure VM (the image type's datasource).  cloud-init finds no datasource of its
    list and falls back to None: the guest never gets the run's key, never reports ready, and the
    datasource check says which it used, from the console."""
    image = image_factory("ec2-datasource-only", fmt="raw")
    run = run_suites(tmp_path, "--provider=qemu", f"--image={image}", "--image-type=azure",
                     str(suites_dir() / "metadata"),
                     select=str(suites_dir() / "cloud_init"))
    assert run.rc == 1, run.explain()
    assert run.checks["cloud_init.datasource_expected"] == "failed", run.explain()
    message = run.messages["cloud_init.datasource_expected"]
    assert "cloud-init used 'DataSourceNone', expected Azure" in message, message
    assert run.checks["metadata.provisioning_reported_ready"] == "failed", run.explain()
    assert "never reported ready" in run.messages["metadata.provisioning_reported_ready"]
    assert run.props["datasource"] == "azure", run.props


@pytest.mark.cost(70)
def test_metadata_serving_another_hostname_fails(good_image: Path, tmp_path: Path) -> None:
    """Negative control of the comparison itself: an emulated EC2 whose metadata service serves
    another hostname than the platform set (a plugin plants it) fails the hostname check."""
    run = run_suites(tmp_path, "-p", "tests.fakes.served_hostname", "--provider=qemu",
                     f"--image={good_image}", "--image-type=genericcloud", "--datasource=ec2",
                     select=str(suites_dir() / "metadata"),
                     env={"PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert run.rc == 1, run.explain()
    assert run.failing() == {"metadata.hostname_matches"}, f"{run.checks}\n{run.messages}"
    assert "hostname is 'ip-192-0-2-99', the platform set 'ip-169-254-169-15'" in \
        run.messages["metadata.hostname_matches"]

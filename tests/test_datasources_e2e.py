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


@pytest.mark.parametrize("datasource", [pytest.param(d, marks=pytest.mark.cost(150))
                                        for d in INSTANCE_TYPES])
def test_emulated_cloud_passes_the_suites(datasource: str, good_image: Path, tmp_path: Path) -> None:
    run = run_suites(tmp_path, "--provider=qemu", f"--image={good_image}",
                     "--image-type=genericcloud", f"--datasource={datasource}",
                     *(f"--ignore={suites_dir() / s}" for s in SLOW_SUITES))
    known = KNOWN.get(datasource, set())
    assert run.rc == (1 if known else 0), run.explain()
    others = {c: s for c, s in run.checks.items()
              if s != "passed" and not run.messages.get(c, "").startswith(SKIP_OK)}
    assert others == dict.fromkeys(known, "failed"), f"{others}\n{run.messages}"
    if datasource == "gce":
        assert "metadata.google.internal" in run.messages["cloud_init.log_free_of_warnings"]
    for check in ("cloud_init.datasource_expected", "metadata.instance_id_matches",
                  "metadata.hostname_matches", "metadata.user_data_applied",
                  *(("metadata.instance_type_matches",) if datasource != "configdrive" else ())):
        assert run.checks.get(check) == "passed", (check, run.checks.get(check), run.messages.get(check))
    assert run.props["datasource"] == datasource, run.props

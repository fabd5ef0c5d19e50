"""A provider defined outside this package and registered only through the entry point (the
example of docs/providers.md, docs/example-provider) gets its options into `pytest --help`, is
listed by `debian-cloud-tests providers`, is collected by `gc`, and passes the provider contract,
with no edit anywhere in this package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from debian_cloud_tests import provider as provider_mod
from debian_cloud_tests.spec import Arch, LaunchSpec

from .fakes.sshd import Sshd
from .test_provider_contract import RUN_ID, Cloud, check_contract

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "example-provider"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """The example installed as pip would: its package and its metadata's entry point."""
    site = tmp_path / "site"
    shutil.copytree(EXAMPLE / "dct_lab", site / "dct_lab")
    meta = site / "dct_lab-0.1.0.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: dct-lab\nVersion: 0.1.0\n")
    (meta / "entry_points.txt").write_text("[debian_cloud_tests.providers]\nlab = dct_lab:LabProvider\n")
    return site


def _run(site: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": path, "TMPDIR": str(tmp_path)})


def test_its_options_reach_pytest(site: Path, tmp_path: Path) -> None:
    out = _run(site, tmp_path, "-m", "pytest", "-p", "no:cacheprovider", "--help").stdout
    assert "--lab-host=DCT_LAB_HOST" in out and "--lab-leases=DCT_LAB_LEASES" in out
    assert "[lab]" in out


def test_providers_lists_it_with_its_scope(site: Path, tmp_path: Path) -> None:
    out = _run(site, tmp_path, "-m", "debian_cloud_tests.cli", "providers", "lab",
               "--lab-leases", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[1].split() == ["lab", "ready", "leases", "in", str(tmp_path)]


def test_gc_removes_its_expired_leases_only(site: Path, tmp_path: Path) -> None:
    leases = tmp_path / "leases"
    leases.mkdir()
    (leases / "old.lease").write_text("root@lab1:22 2020-01-01T00:00:00Z\n")
    (leases / "new.lease").write_text("root@lab2:22 2999-01-01T00:00:00Z\n")
    out = _run(site, tmp_path, "-m", "debian_cloud_tests.cli", "gc", "--provider", "lab",
               "--lab-leases", str(leases))
    assert out.returncode == 0, out.stderr
    assert "lab: deleted lease of root@lab1:22 (old)" in out.stdout.splitlines()
    assert sorted(p.name for p in leases.iterdir()) == ["new.lease"]


def test_it_passes_the_provider_contract(site: Path, sshd: Sshd, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(site))
    provider_mod.provider_classes.cache_clear()
    try:
        lab = provider_mod.get_provider("lab")
    finally:
        provider_mod.provider_classes.cache_clear()
    leases = tmp_path / "leases"
    leases.mkdir()
    spec = LaunchSpec(image="debian-12-genericcloud-amd64", arch=Arch.AMD64, run_id=RUN_ID,
                      boot_timeout=20, options={"lab_host": f"root@127.0.0.1:{sshd.port}",
                                                "lab_key": str(sshd.client_key),
                                                "lab_host_key": sshd.host_key,
                                                "lab_leases": str(leases)})

    def leftovers() -> dict[str, list[str]]:
        found = sorted(p.name for p in leases.iterdir())
        return {"leases": found} if found else {}

    check_contract(Cloud("lab", lab, spec, leftovers, lambda: 0, creates=False, reachable=True,
                         port=sshd.port, key_option="lab_key"), tmp_path)

"""Installed but not asked for (no --provider), the plugin stays out of a pytest session: no
fixture of its own, no autouse fixture, no header line; the project's own fixtures and
testinfra's are what its tests get."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

OWN = '''
import pytest


@pytest.fixture
def machine():
    return "the project's own"


def test_own_fixture_wins(machine):
    assert machine == "the project's own"


def test_testinfra_host_is_this_machine(host):
    assert host.backend.NAME == "local"
    assert host.run("true").rc == 0
'''


def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)


def test_a_session_without_provider_keeps_its_own_fixtures_and_testinfras(tmp_path: Path) -> None:
    (tmp_path / "test_project.py").write_text(OWN)
    run = _pytest(tmp_path, "test_project.py")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout
    # pytest lists the installed plugins; ours adds no header line of its own
    assert not [ln for ln in run.stdout.splitlines() if ln.startswith("debian-cloud-tests")], run.stdout


def test_the_runs_fixtures_are_not_offered_without_provider(tmp_path: Path) -> None:
    (tmp_path / "test_project.py").write_text(OWN)
    listed = _pytest(tmp_path, "--fixtures", "test_project.py").stdout
    for ours in ("dct_run", "instance", "facts", "boot_budget", "_release_from_the_guest"):
        assert f"\n{ours} " not in listed and f"\n{ours}\n" not in listed, ours

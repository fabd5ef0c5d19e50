"""The policy and FAI config space the package ships, and the demo that gates with the policy:
found in the package, one copy (examples/ links to it), and a demo that cannot gate never
reads as a publish."""

from __future__ import annotations

from pathlib import Path

import pytest

from debian_cloud_tests import cli, shipped
from debian_cloud_tests.errors import MissingDependencyError
from debian_cloud_tests.gate.cli import main as gate_main
from debian_cloud_tests.testimage import builder

ROOT = Path(__file__).resolve().parent.parent
PASSING = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="1" timestamp="2026-01-01T00:00:00">
<testcase classname="bvt.test_bvt" name="test_system_running" time="0.1"/>
</testsuite></testsuites>
"""


def test_examples_are_the_shipped_files_not_copies() -> None:
    """One copy: what a checkout's users read under examples/ is what the package ships."""
    assert (ROOT / "examples" / "policy.toml").resolve() == shipped.policy().resolve()
    assert (ROOT / "examples" / "fai").resolve() == shipped.fai_config_space().resolve()
    assert shipped.policy().is_relative_to(ROOT / "debian_cloud_tests" / "data")


def test_a_missing_data_file_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(shipped.resources, "files", lambda package: tmp_path)
    for find in (shipped.policy, shipped.fai_config_space):
        with pytest.raises(MissingDependencyError, match="missing from this installation: reinstall"):
            find()


@pytest.fixture
def no_boot(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """The demo's image build and test run stubbed: the run writes no report (it could not run)."""
    calls: list[str] = []
    monkeypatch.setattr(builder, "build_image", lambda recipe: calls.append("build") or tmp_path / "i.qcow2")
    monkeypatch.setattr(cli, "_run", lambda ns: calls.append("run") or 0)
    return calls


def test_the_demo_without_a_report_is_no_publish(no_boot: list[str], tmp_path: Path, capsys) -> None:
    """The old demo printed "verdict: PUBLISH" when pytest exited 0 but nothing could be gated."""
    rc = cli.main(["demo", "--output", str(tmp_path)])
    out, err = capsys.readouterr()
    assert no_boot == ["build", "run"]
    assert rc == 2 and "PUBLISH" not in out
    assert err.count("\n") == 1 and "wrote no JUnit report" in err and "nothing to gate" in err


def test_the_demo_without_its_policy_fails_before_building(no_boot: list[str], tmp_path: Path, capsys,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shipped.resources, "files", lambda package: tmp_path / "broken-install")
    rc = cli.main(["demo", "--output", str(tmp_path)])
    out, err = capsys.readouterr()
    assert rc == MissingDependencyError.exit_code and no_boot == [] and "PUBLISH" not in out
    assert err.startswith("debian-cloud-tests: error: ") and "policy.toml is missing" in err
    assert err.count("\n") == 1


def test_the_demo_verdict_is_the_gates_on_debians_policy(tmp_path: Path, capsys) -> None:
    junit = tmp_path / "demo.xml"
    junit.write_text(PASSING)
    # one passing check is far from what Debian's policy requires: the gate holds
    assert cli._demo_verdict(0, junit, shipped.policy(), gate_main) == 1
    assert "verdict: HOLD" in capsys.readouterr().out
    assert cli._demo_verdict(0, junit, shipped.policy(), lambda argv: 0) == 0
    assert "verdict: PUBLISH" in capsys.readouterr().out
    assert cli._demo_verdict(0, junit, shipped.policy(), lambda argv: 2) == 2
    assert "verdict: none (gate exit 2)" in capsys.readouterr().out

"""Every run writes its completeness into its JUnit report: what was collected and selected, by
which filter, and how the session ended (no machine needed: plain tests under the plugin)."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from debian_cloud_tests import completeness

TESTS = """
import os, signal
import pytest

def test_one():
    pass

def test_two():
    pass

@pytest.mark.slow
def test_slow():
    pass

def test_fails():
    assert os.environ.get("FAIL") != "1"

def test_stopped():
    if os.environ.get("STOP") == "1":
        from debian_cloud_tests import interrupts
        interrupts.install()
        os.kill(os.getpid(), signal.SIGTERM)
"""


def _run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    (tmp_path / "test_some.py").write_text(TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    slow: slow\n")
    junit = tmp_path / "r.xml"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                           f"--junitxml={junit}", *args], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120, check=False)
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None, proc.stdout + proc.stderr
    return proc.returncode, {p.get("name", ""): p.get("value", "") for p in suite.iter("property")}


def test_a_full_run_records_that_it_ran_everything(tmp_path: Path) -> None:
    rc, props = _run(tmp_path)
    assert rc == 0
    assert props == {"tests_collected": "5", "tests_selected": "5", "tests_deselected": "0",
                     "exit_status": "0", "interrupted": "no"}
    assert set(completeness.REQUIRED) <= props.keys()


def test_a_failed_run_records_exit_status_1(tmp_path: Path) -> None:
    rc, props = _run(tmp_path, env={"FAIL": "1"})
    assert rc == 1 and props["exit_status"] == "1" and props["interrupted"] == "no"


def test_filters_are_recorded_with_their_expressions(tmp_path: Path) -> None:
    rc, props = _run(tmp_path, "-k", "not two", "-m", "not slow", "--deselect", "test_some.py::test_one")
    assert rc == 0
    assert (props["tests_collected"], props["tests_selected"], props["tests_deselected"]) == ("5", "2", "3")
    assert props["filter_keyword"] == "not two" and props["filter_markers"] == "not slow"
    assert props["filter_ignored"] == "test_some.py::test_one"


def test_a_run_stopped_by_a_signal_records_it(tmp_path: Path) -> None:
    rc, props = _run(tmp_path, env={"STOP": "1"})
    assert rc == 2
    assert props["exit_status"] == "2" and props["interrupted"] == "yes" and props["stop_signal"] == "SIGTERM"


def test_a_run_stopped_at_the_first_failure_records_it(tmp_path: Path) -> None:
    rc, props = _run(tmp_path, "-x", env={"FAIL": "1"})
    assert rc == 1 and props["stopped_early"].startswith("stopping after 1 failures")


def test_a_collection_error_is_recorded_as_an_interrupted_run(tmp_path: Path) -> None:
    (tmp_path / "test_broken.py").write_text("import no_such_module_here\n")
    rc, props = _run(tmp_path)
    assert rc == 2 and props["exit_status"] == "2" and props["interrupted"] == "yes"


def test_suites_that_lost_tests_to_a_filter(tmp_path: Path) -> None:
    root = tmp_path / "suites"
    tally = completeness.Tally()
    tally.select(["bvt", "bvt", "config"])
    tally.deselect(["reboot"])
    available = ["bvt", "config", "network", "reboot", "uniqueness"]
    lost = completeness.filtered_suites(tally, root, available, [str(root)],
                                        [str(root / "uniqueness"), str(root / "config" / "test_x.py")])
    # reboot deselected, network and uniqueness never collected, config only in part
    assert lost == ["config", "network", "reboot", "uniqueness"]
    assert completeness.filtered_suites(tally, root, ["bvt", "config", "reboot"], [str(root)], []) == \
        ["reboot"]
    assert completeness.filtered_suites(tally, root, ["bvt"], [str(root / "bvt" / "test_bvt.py")], []) == \
        ["bvt", "reboot"]

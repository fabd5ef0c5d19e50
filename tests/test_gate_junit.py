"""Reading JUnit: what counts as one run and one check, and which files are refused (exit 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from debian_cloud_tests.gate import GateInputError, junit
from tests.test_gate_support import REALISTIC, case, passing, props, write


def test_realistic_report(tmp_path: Path) -> None:
    path = tmp_path / "results-qemu-amd64.xml"
    path.write_text(REALISTIC)
    [run] = junit.parse(path)
    assert run.prop("provider") == "qemu" and run.prop("os_version_id") == "12"
    assert {c.check_id: c.final.status for c in run.cases} == {
        "bvt.ssh_login_default_user": "passed", "bvt.system_running": "failed", "bvt.x": "skipped"}
    failed = run.cases[1]
    assert failed.final.message == "AssertionError: system state is 'degraded'" and failed.suite == "bvt"


def test_bare_testsuite_root_is_accepted(tmp_path: Path) -> None:
    [run] = junit.parse(write(tmp_path, "r.xml", [case("bvt.a")], bare=True))
    assert [c.check_id for c in run.cases] == ["bvt.a"]


def test_check_id_falls_back_to_classname_and_name(tmp_path: Path) -> None:
    text = ('<testsuite name="tempest"><testcase classname="tempest.api.compute.test_servers.ServersTest" '
            'name="test_list[id-1,smoke]"/><testcase classname="" name="orphan"/></testsuite>')
    path = tmp_path / "tempest.xml"
    path.write_text(text)
    [run] = junit.parse(path)
    assert [c.check_id for c in run.cases] == [
        "tempest.api.compute.test_servers.ServersTest.test_list[id-1,smoke]", "orphan"]
    assert run.cases[0].suite == "tempest"


def test_rerun_failures_are_earlier_attempts(tmp_path: Path) -> None:
    [run] = junit.parse(write(tmp_path, "r.xml", [case("bvt.a", reruns=2)]))
    [c] = run.cases
    assert c.final.status == "passed" and [a.status for a in c.earlier] == ["failed", "failed"]


def test_failure_wins_over_teardown_error(tmp_path: Path) -> None:
    text = ('<testsuite><testcase classname="bvt.t" name="test_a"><failure message="image"/>'
            '<error message="teardown"/></testcase></testsuite>')
    path = tmp_path / "r.xml"
    path.write_text(text)
    assert junit.parse(path)[0].cases[0].final.status == "failed"


def test_nested_suites_inherit_properties(tmp_path: Path) -> None:
    text = ('<testsuites><testsuite name="outer"><properties><property name="provider" value="aws"/>'
            '</properties><testsuite name="inner"><testcase classname="bvt.t" name="test_a"/></testsuite>'
            '</testsuite></testsuites>')
    path = tmp_path / "r.xml"
    path.write_text(text)
    [run] = junit.parse(path)
    assert run.prop("provider") == "aws" and len(run.cases) == 1


def test_a_report_without_tests_is_a_run_with_zero_cases(tmp_path: Path) -> None:
    path = tmp_path / "r.xml"
    path.write_text('<testsuites name="pytest tests"></testsuites>')
    [run] = junit.parse(path)
    assert run.cases == []


@pytest.mark.parametrize(("content", "problem", "line"), [
    ("", "the file is empty", None),
    ("   \n", "the file is empty", None),
    ('<?xml version="1.0"?>\n<testsuites><testsuite name="p">\n<testcase name="a">', "truncated", 3),
    ("<testsuites><testsuite></testsuites>", "malformed", 1),
    ("not xml at all", "malformed", 1),
    ("<html><body/></html>", "not JUnit XML", None),
])
def test_unusable_files_are_input_errors(tmp_path: Path, content: str, problem: str,
                                         line: int | None) -> None:
    path = tmp_path / "bad.xml"
    path.write_text(content)
    with pytest.raises(GateInputError) as err:
        junit.parse(path)
    assert problem in str(err.value) and err.value.line == line
    assert str(path) in err.value.one_line() and "\n" not in err.value.one_line()


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(GateInputError, match="no such file"):
        junit.load([tmp_path / "absent.xml"])


def test_same_file_twice_is_refused(tmp_path: Path) -> None:
    path = passing(tmp_path)
    with pytest.raises(GateInputError, match="given twice"):
        junit.load([path, tmp_path / "." / path.name])


def test_a_copy_of_a_file_is_refused(tmp_path: Path) -> None:
    path = passing(tmp_path)
    copy = tmp_path / "copy.xml"
    copy.write_bytes(path.read_bytes())
    with pytest.raises(GateInputError, match="same content"):
        junit.load([path, copy])


def test_two_files_with_the_same_run_id_are_refused(tmp_path: Path) -> None:
    a = write(tmp_path, "a.xml", [case("bvt.a")], props(run_id="r1"))
    b = write(tmp_path, "b.xml", [case("bvt.a", "failed")], props(run_id="r1"))
    with pytest.raises(GateInputError, match="run_id r1 is also in"):
        junit.load([a, b])


def test_distinct_runs_load_in_order(tmp_path: Path) -> None:
    runs = junit.load([passing(tmp_path, "a.xml"), passing(tmp_path, "b.xml", arch="arm64")])
    assert [r.prop("arch") for r in runs] == ["amd64", "arm64"]


# --- structure: results wherever a test case stands, nothing left unread ---------------------

def _xml(tmp_path: Path, text: str, name: str = "r.xml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_test_case_grouped_inside_another_element_is_read(tmp_path: Path) -> None:
    path = _xml(tmp_path, '<testsuites><testsuite name="p"><group name="g">'
                '<testcase classname="bvt.t" name="test_a"><failure message="broken"/></testcase>'
                '</group><testcase classname="bvt.t" name="test_b"/></testsuite></testsuites>')
    [run] = junit.parse(path)
    assert {c.check_id: c.final.status for c in run.cases} == {"bvt.t.test_a": "failed",
                                                               "bvt.t.test_b": "passed"}


def test_a_suite_grouped_inside_another_element_is_read(tmp_path: Path) -> None:
    path = _xml(tmp_path, '<testsuites><group><testsuite name="p"><testcase classname="bvt.t" '
                'name="test_a"><failure message="broken"/></testcase></testsuite></group></testsuites>')
    [run] = junit.parse(path)
    assert run.cases[0].final.status == "failed"


def test_test_cases_straight_under_the_root_are_read(tmp_path: Path) -> None:
    path = _xml(tmp_path, '<testsuites><testcase classname="bvt.t" name="test_a"><error message="x"/>'
                '</testcase></testsuites>')
    [run] = junit.parse(path)
    assert run.cases[0].final.status == "error"


@pytest.mark.parametrize("body", [
    '<testsuite><group><failure message="broken"/></group><testcase name="a"/></testsuite>',
    '<testsuite><error message="suite setup failed"/><testcase name="a"/></testsuite>',
    '<testsuite><testcase name="a"><details><failure message="deep"/></details></testcase></testsuite>',
    '<testsuite><testcase name="a"><testcase name="b"/></testcase></testsuite>',
])
def test_a_result_the_gate_cannot_attribute_is_an_input_error(tmp_path: Path, body: str) -> None:
    path = _xml(tmp_path, body)
    with pytest.raises(GateInputError) as err:
        junit.parse(path)
    assert str(path) in err.value.one_line() and "\n" not in err.value.one_line()


@pytest.mark.parametrize(("attrs", "needle"), [
    ('tests="3"', "tests=3 but 2 test cases in the file"),
    ('tests="1"', "tests=1 but 2 test cases in the file"),
    ('failures="0"', "failures=0 but 1 in the file"),
    ('errors="2"', "errors=2 but 0 in the file"),
    ('skipped="1"', "skipped=1 but 0 in the file"),
    ('tests="two"', "tests='two', not a number"),
])
def test_counts_that_disagree_with_the_test_cases_are_an_input_error(tmp_path: Path, attrs: str,
                                                                    needle: str) -> None:
    path = _xml(tmp_path, f'<testsuites><testsuite name="pytest" {attrs}><testcase name="a"/>'
                '<testcase name="b"><failure message="x"/></testcase></testsuite></testsuites>')
    with pytest.raises(GateInputError) as err:
        junit.parse(path)
    assert needle in str(err.value) and str(path) in err.value.one_line()


def test_counts_as_pytest_writes_them_are_accepted(tmp_path: Path) -> None:
    """pytest's own counting, from a real run: a setup and a teardown error in one test case, a
    pass then a teardown error, a failure then a teardown error written as two test cases."""
    path = _xml(tmp_path, '<testsuites><testsuite name="pytest" errors="4" failures="1" skipped="0" '
                'tests="4"><testcase classname="test_y" name="test_both"><error message="setup"/>'
                '<error message="teardown"/></testcase><testcase classname="test_y" '
                'name="test_pass_then_teardown"><error message="teardown"/></testcase>'
                '<testcase classname="test_y" name="test_fail_then_teardown"><failure message="x"/>'
                '</testcase><testcase classname="test_y" name="test_fail_then_teardown">'
                '<error message="teardown"/></testcase></testsuite></testsuites>')
    assert len(junit.parse(path)[0].cases) == 4


def test_a_report_pytest_writes_is_read_without_complaint(tmp_path: Path) -> None:
    (tmp_path / "test_y.py").write_text(
        "import pytest\n\n@pytest.fixture\ndef a():\n    yield\n    raise RuntimeError('t')\n\n"
        "@pytest.fixture\ndef b(a):\n    raise RuntimeError('s')\n\n"
        "def test_both(b):\n    pass\n\ndef test_pass(a):\n    pass\n\ndef test_fail(a):\n    assert 0\n\n"
        "@pytest.mark.skip\ndef test_skip():\n    pass\n\n"
        "@pytest.mark.xfail\ndef test_xfail():\n    assert 0\n")
    junit_path = tmp_path / "y.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                    f"--junitxml={junit_path}", "test_y.py"], cwd=tmp_path, capture_output=True,
                   check=False, timeout=120)
    [run] = junit.parse(junit_path)
    assert {c.check_id for c in run.cases} == {f"test_y.test_{n}" for n in ("both", "pass", "fail", "skip",
                                                                            "xfail")}

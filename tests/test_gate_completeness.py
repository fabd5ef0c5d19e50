"""Completeness: a run of the plugin that did not end on its own, lost results or was filtered
holds (one line per run) unless the policy accepts its filter; named targets must report; the
built-in defaults are strict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from debian_cloud_tests.gate import GateInputError
from debian_cloud_tests.gate.policy import parse_policy
from tests.test_gate_support import BVT, case, judge, kinds, props, write


def record(cases: int = len(BVT), **overrides: str | None) -> dict[str, str | None]:
    """The completeness record of a whole, unfiltered bvt run of *cases* tests."""
    return {"dct_version": "0.1.0", "tests_collected": str(cases), "tests_selected": str(cases),
            "tests_deselected": "0", "exit_status": "0", "interrupted": "no",
            "suites_selected": json.dumps({"bvt": cases}), **overrides}


def ours(tmp_path: Path, name: str = "r.xml", cases: list[str] | None = None,
         **overrides: str | None) -> Path:
    """A report of the plugin: every BVT check passed, with its completeness record."""
    return write(tmp_path, name, cases or [case(c) for c in BVT], props(**record(**overrides)))


def test_a_complete_run_publishes(tmp_path: Path) -> None:
    v = judge([ours(tmp_path)])
    assert v.publish, v.reasons


def test_a_report_of_the_plugin_without_a_record_holds(tmp_path: Path) -> None:
    path = write(tmp_path, "r.xml", [case(c) for c in BVT], props(dct_version="0.1.0"))
    v = judge([path])
    assert kinds(v) == ["incomplete"] and "no completeness record" in v.reasons[0].message
    assert str(path) in v.reasons[0].message


@pytest.mark.parametrize(("overrides", "needle"), [
    ({"exit_status": "2", "interrupted": "yes", "stop_signal": "SIGTERM"},
     "pytest exited 2; interrupted by SIGTERM"),
    ({"exit_status": "33"}, "pytest exited 33"),
    ({"interrupted": "yes"}, "interrupted"),
    ({"exit_status": "1", "stopped_early": "stopping after 1 failures"},
     "stopped early (stopping after 1 failures)"),
    ({"tests_selected": "5"}, "3 of 5 selected tests reported"),
    ({"suites_selected": json.dumps({"bvt": 3, "reboot": 2})},
     "suite reboot: 0 of 2 selected tests reported"),
])
def test_a_run_that_did_not_complete_holds_in_one_line(tmp_path: Path, overrides: dict[str, str],
                                                       needle: str) -> None:
    v = judge([ours(tmp_path, **overrides)])
    assert kinds(v) == ["incomplete"] and needle in v.reasons[0].message
    assert v.reasons[0].target == "qemu/amd64/bios"


KEYWORD = {"tests_collected": "5", "tests_deselected": "2", "filter_keyword": "not reboot",
           "suites_filtered": "reboot"}
ACCEPT = """[[accept_filter]]
provider = "qemu"
firmware = "b*"
suites = ["reboot"]
keyword = "not reboot"
reason = "no reboot here"
"""


@pytest.mark.parametrize("overrides", [
    KEYWORD, {"filter_markers": "not slow"}, {"tests_deselected": "1"},
    {"filter_ignored": "suites/reboot"}, {"suites_filtered": "reboot"},
])
def test_a_filtered_run_holds(tmp_path: Path, overrides: dict[str, str]) -> None:
    v = judge([ours(tmp_path, **overrides)])
    assert kinds(v) == ["incomplete"] and "filtered (" in v.reasons[0].message
    assert "no [[accept_filter]] accepts it" in v.reasons[0].message


def test_a_filter_the_policy_accepts_for_the_target_publishes_with_a_note(tmp_path: Path) -> None:
    v = judge([ours(tmp_path, **KEYWORD)], ACCEPT)
    assert v.publish and "accepted by [[accept_filter]] #1: no reboot here" in v.notes[0]


@pytest.mark.parametrize(("overrides", "policy"), [
    ({**KEYWORD, "provider": "aws"}, ACCEPT),  # another target
    ({**KEYWORD, "filter_keyword": "not reboot and not network"}, ACCEPT),  # another expression
    ({**KEYWORD, "suites_filtered": "reboot,network"}, ACCEPT),  # a suite it does not name
    ({**KEYWORD, "filter_markers": "not slow"}, ACCEPT),  # an expression it does not name
    ({**KEYWORD, "suites_selected": None}, ACCEPT),  # no record of what the filter left out
    ({**KEYWORD, "exit_status": "2"}, ACCEPT),  # accepted filter, but the run did not complete
])
def test_a_filter_the_policy_does_not_accept_there_holds(tmp_path: Path, overrides: dict[str, str | None],
                                                          policy: str) -> None:
    assert kinds(judge([ours(tmp_path, **overrides)], policy)) == ["incomplete"]


def test_one_line_per_incomplete_run(tmp_path: Path) -> None:
    a = ours(tmp_path, "a.xml", exit_status="2", interrupted="yes", **{"filter_keyword": "x"})
    b = ours(tmp_path, "b.xml", arch="arm64", image_sha256="f" * 64, exit_status="4")
    v = judge([a, b])
    assert kinds(v) == ["incomplete", "incomplete"]
    assert [r.target for r in v.reasons] == ["qemu/amd64/bios", "qemu/arm64/bios"]


def test_a_foreign_report_is_judged_by_the_requirements(tmp_path: Path) -> None:
    """A report of another producer carries no record: it is not held as incomplete, and the
    policy's requirements (the defaults' identity properties included) still apply."""
    foreign = write(tmp_path, "tempest.xml", [case("tempest.api.a")])
    assert judge([foreign]).publish
    v = judge([write(tmp_path, "bare.xml", [case("tempest.api.a")], props(run_id=None))],
              '[required]\nsuites = ["bvt"]\n')
    assert sorted(kinds(v)) == ["missing", "property"]


# --- the built-in defaults are strict ------------------------------------------------------------

def test_one_passing_test_case_and_no_properties_holds_without_a_policy(tmp_path: Path) -> None:
    path = tmp_path / "r.xml"
    path.write_text('<testsuites><testsuite name="x" tests="1"><testcase classname="a" name="b"/>'
                    "</testsuite></testsuites>")
    v = judge([path])
    assert not v.publish and kinds(v) == ["property"]
    assert "image_sha256, provider, arch, run_id" in v.reasons[0].message


def test_the_defaults_apply_to_a_policy_that_leaves_properties_out(tmp_path: Path) -> None:
    path = write(tmp_path, "r.xml", [case("bvt.a")], props(image_sha256=None))
    assert kinds(judge([path], "[flaky]\nallowed = true\n")) == ["property"]


# --- required targets ----------------------------------------------------------------------------

REQUIRE_UEFI = '[[require_target]]\nprovider = "qemu"\narch = "*"\nfirmware = "uefi"\n'


def test_a_required_target_without_results_holds_naming_it(tmp_path: Path) -> None:
    v = judge([ours(tmp_path)], REQUIRE_UEFI)
    assert kinds(v) == ["missing-target"] and "qemu/*/uefi/*" in v.reasons[0].message


def test_a_required_target_with_results_publishes(tmp_path: Path) -> None:
    bios = ours(tmp_path, "a.xml")
    uefi = ours(tmp_path, "b.xml", firmware="uefi")
    assert judge([bios, uefi], REQUIRE_UEFI + '[[require_target]]\nprovider = "q?mu"\n').publish


def test_a_required_target_is_not_met_by_a_run_that_does_not_say(tmp_path: Path) -> None:
    assert kinds(judge([ours(tmp_path, firmware=None)], REQUIRE_UEFI)) == ["missing-target"]


@pytest.mark.parametrize(("text", "needle"), [
    ("[[require_target]]\n", "names no target"),
    ('[[require_target]]\nprovider = "qemu"\nregion = "x"\n', "unknown key 'region'"),
    ('[[accept_filter]]\nsuites = ["reboot"]\n', "'reason' in [[accept_filter]] #1 is required"),
    ('[[accept_filter]]\nreason = "x"\nsuites = "reboot"\n', "must be a list"),
    ('[[accept_filter]]\nreason = "x"\nkeyword = 3\n', "'keyword' in [[accept_filter]] #1"),
])
def test_bad_target_and_filter_entries_are_input_errors(text: str, needle: str) -> None:
    with pytest.raises(GateInputError) as err:
        parse_policy(text, "policy.toml")
    assert needle in str(err.value) and err.value.line is not None

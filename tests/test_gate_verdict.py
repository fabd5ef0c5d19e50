"""Required checks, zero tests, failures and provider errors: each rule made to hold and to publish."""

from __future__ import annotations

from pathlib import Path

from tests.test_gate_support import BVT, DENY, REALISTIC, case, judge, kinds, passing, props, write


def test_all_passing_publishes(tmp_path: Path) -> None:
    v = judge([passing(tmp_path)], '[required]\nsuites = ["bvt"]\n')
    assert v.publish and v.reasons == []
    assert v.statuses() == dict.fromkeys(BVT, "passed")


def test_realistic_report_holds_on_its_failure(tmp_path: Path) -> None:
    path = tmp_path / "results-qemu-amd64.xml"
    path.write_text(REALISTIC)
    v = judge([path], '[required]\nsuites = ["bvt"]\n')
    assert not v.publish and kinds(v) == ["failed"]
    assert v.reasons[0].check == "bvt.system_running" and v.reasons[0].target == "qemu/amd64/bios"
    assert "degraded" in v.reasons[0].message
    # bvt.x was skipped as not applicable: no hold for the suite, but a hold when named.
    assert kinds(judge([path], '[required]\nchecks = ["bvt.x"]\n')) == ["failed", "skipped"]


# --- required ---------------------------------------------------------------------------------

def test_required_suite_that_did_not_run_holds(tmp_path: Path) -> None:
    v = judge([passing(tmp_path)], '[required]\nsuites = ["bvt", "config"]\n')
    assert kinds(v) == ["missing"] and v.reasons[0].check == "suite config"


def test_required_check_that_did_not_run_holds_and_is_listed_missing(tmp_path: Path) -> None:
    v = judge([passing(tmp_path)], '[required]\nchecks = ["bvt.ssh_login_default_user", "bvt.grown"]\n')
    assert kinds(v) == ["missing"] and v.statuses()["bvt.grown"] == "missing"


def test_required_pattern_needs_at_least_one_match(tmp_path: Path) -> None:
    assert judge([passing(tmp_path, "a.xml")], '[required]\nchecks = ["bvt.*"]\n').publish
    v = judge([passing(tmp_path, "b.xml")], '[required]\nchecks = ["net.*"]\n')
    assert kinds(v) == ["missing"]


def test_skipped_required_check_holds(tmp_path: Path) -> None:
    path = write(tmp_path, "r.xml", [case("bvt.a"), case("bvt.b", "skipped", "no serial console")])
    v = judge([path], '[required]\nsuites = ["bvt"]\n')
    assert kinds(v) == ["skipped"] and "no serial console" in v.reasons[0].message


def test_not_applicable_skip_in_a_required_suite_does_not_hold(tmp_path: Path) -> None:
    path = write(tmp_path, "r.xml", [case("bvt.a"), case("bvt.b", "skipped", "not applicable: arch arm64")])
    assert judge([path], '[required]\nsuites = ["bvt"]\nchecks = ["bvt.*"]\n').publish
    assert kinds(judge([path], '[required]\nchecks = ["bvt.b"]\n')) == ["skipped"]


def test_required_suite_with_every_check_not_applicable_is_missing(tmp_path: Path) -> None:
    path = write(tmp_path, "r.xml", [case("bvt.a"), case("config.b", "skipped", "not applicable: qemu")])
    v = judge([path], '[required]\nsuites = ["bvt", "config"]\n')
    assert kinds(v) == ["missing"] and "(1 skipped)" in v.reasons[0].message


def test_skipped_check_that_is_not_required_does_not_hold(tmp_path: Path) -> None:
    path = write(tmp_path, "r.xml", [case("bvt.a"), case("extra.b", "skipped")])
    assert judge([path], '[required]\nsuites = ["bvt"]\n').publish


def test_required_rule_applies_only_in_its_scope(tmp_path: Path) -> None:
    policy = '[[required.rule]]\nsuites = ["config"]\nproviders = ["qemu", "aws"]\narches = ["amd64"]\n'
    assert kinds(judge([passing(tmp_path, "a.xml")], policy)) == ["missing"]
    assert judge([passing(tmp_path, "b.xml", arch="arm64")], policy).publish
    assert judge([passing(tmp_path, "c.xml", provider="gce")], policy).publish


def test_required_rule_applies_when_the_run_does_not_say_where_it_ran(tmp_path: Path) -> None:
    policy = '[[required.rule]]\nsuites = ["config"]\narches = ["amd64"]\n[properties]\nrequired = []\n'
    assert kinds(judge([passing(tmp_path, arch=None)], policy)) == ["missing"]


def test_required_rule_scoped_by_release_codename_or_number(tmp_path: Path) -> None:
    by_name = '[[required.rule]]\nsuites = ["config"]\nreleases = ["bookworm"]\n'
    by_number = '[[required.rule]]\nsuites = ["config"]\nreleases = ["12"]\n'
    other = '[[required.rule]]\nsuites = ["config"]\nreleases = ["trixie"]\n'
    path = passing(tmp_path)
    assert kinds(judge([path], by_name)) == ["missing"] and kinds(judge([path], by_number)) == ["missing"]
    assert judge([path], other).publish


# --- zero tests -------------------------------------------------------------------------------

def test_zero_tests_never_publishes(tmp_path: Path) -> None:
    path = tmp_path / "r.xml"
    path.write_text('<testsuites><testsuite name="pytest" tests="0"><properties>'
                    + "".join(f'<property name="{k}" value="{v}"/>' for k, v in props().items())
                    + '</properties></testsuite></testsuites>')
    v = judge([path])
    assert not v.publish and kinds(v) == ["no-tests"]


def test_all_skipped_is_zero_tests(tmp_path: Path) -> None:
    path = write(tmp_path, "r.xml", [case("bvt.a", "skipped"), case("bvt.b", "skipped")])
    v = judge([path])
    assert kinds(v) == ["no-tests"] and "2 skipped" in v.reasons[0].message


# --- failures and provider errors -------------------------------------------------------------

def test_failure_of_a_check_that_is_not_required_still_holds(tmp_path: Path) -> None:
    path = write(tmp_path, "r.xml", [case("bvt.a"), case("extra.b", "failed", "broken")])
    assert kinds(judge([path], '[required]\nsuites = ["bvt"]\n')) == ["failed"]


def test_provider_error_is_could_not_test_not_image_broken(tmp_path: Path) -> None:
    path = write(tmp_path, "r.xml", [case("bvt.a", "error", "no machine: quota exceeded"),
                                     case("bvt.b", "failed", "image defect")])
    v = judge([path])
    assert sorted(kinds(v)) == ["could-not-test", "failed"]
    [cnt] = [r for r in v.reasons if r.kind == "could-not-test"]
    assert cnt.check == "bvt.a" and "quota" in cnt.message


def test_provider_error_patterns_reclassify_failures(tmp_path: Path) -> None:
    path = write(tmp_path, "r.xml", [case("bvt.a", "failed", "InsufficientInstanceCapacity in us-east-1a")])
    v = judge([path], '[provider_errors]\npatterns = ["InsufficientInstanceCapacity"]\n')
    assert kinds(v) == ["could-not-test"]


def test_deny_list_never_excuses_provider_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "r.xml", [case("bvt.a", "error", "quota")])
    v = judge([path], DENY.format(id="bvt.a"))
    assert kinds(v) == ["could-not-test"] and v.excused == []


def test_provider_error_then_pass_on_rerun_publishes_with_a_note(tmp_path: Path) -> None:
    first = write(tmp_path, "a.xml", [case("bvt.a", "error", "quota")], timestamp="2026-01-01T10:00:00")
    rerun = write(tmp_path, "b.xml", [case("bvt.a")], timestamp="2026-01-01T11:00:00")
    v = judge([first, rerun])
    assert v.publish and v.flaky == [] and "after a provider error" in v.notes[0]

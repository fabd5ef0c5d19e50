"""Reruns: a failure then a pass is flaky, always reported, allowed or not by the policy."""

from __future__ import annotations

from pathlib import Path

from tests.test_gate_support import DENY, case, judge, kinds, props, write


def _flaky(tmp_path: Path, name: str = "r.xml", checks: tuple[str, ...] = ("bvt.a",)) -> Path:
    return write(tmp_path, name, [case(c, reruns=1) for c in checks] + [case("bvt.z")])


def test_flaky_is_forbidden_by_default(tmp_path: Path) -> None:
    v = judge([_flaky(tmp_path)])
    assert kinds(v) == ["flaky"] and v.statuses()["bvt.a"] == "flaky"
    assert v.flaky[0].history == "failed, passed"


def test_flaky_allowed_publishes_but_is_reported(tmp_path: Path) -> None:
    v = judge([_flaky(tmp_path)], "[flaky]\nallowed = true\n")
    assert v.publish and [f.check for f in v.flaky] == ["bvt.a"]


def test_flaky_over_the_maximum_holds(tmp_path: Path) -> None:
    policy = "[flaky]\nallowed = true\nmax = 1\n"
    assert judge([_flaky(tmp_path, "a.xml")], policy).publish
    v = judge([_flaky(tmp_path, "b.xml", ("bvt.a", "bvt.b"))], policy)
    assert kinds(v) == ["flaky"] and "2 flaky checks" in v.reasons[0].message


def test_failure_in_one_file_then_pass_in_a_rerun_file_is_flaky(tmp_path: Path) -> None:
    first = write(tmp_path, "a.xml", [case("bvt.a", "failed", "race")], timestamp="2026-01-01T10:00:00+00:00")
    rerun = write(tmp_path, "b.xml", [case("bvt.a")], timestamp="2026-01-01T11:00:00+00:00")
    v = judge([rerun, first], "[flaky]\nallowed = true\n")  # order of arguments does not matter
    assert v.publish and v.flaky[0].history == "failed, passed"


def test_pass_then_failure_in_a_later_rerun_holds(tmp_path: Path) -> None:
    first = write(tmp_path, "a.xml", [case("bvt.a")], timestamp="2026-01-01T10:00:00")
    later = write(tmp_path, "b.xml", [case("bvt.a", "failed", "broke")], timestamp="2026-01-01T11:00:00")
    assert kinds(judge([first, later], "[flaky]\nallowed = true\n")) == ["failed"]


def test_skipped_rerun_does_not_hide_the_first_result(tmp_path: Path) -> None:
    first = write(tmp_path, "a.xml", [case("bvt.a", "failed", "broken")], timestamp="2026-01-01T10:00:00")
    later = write(tmp_path, "b.xml", [case("bvt.a", "skipped")], timestamp="2026-01-01T11:00:00")
    assert kinds(judge([first, later])) == ["failed"]


def test_known_flaky_check_is_excused_by_the_deny_list(tmp_path: Path) -> None:
    v = judge([_flaky(tmp_path)], DENY.format(id="bvt.a"))
    assert v.publish and v.flaky[0].excused and v.statuses()["bvt.a"] == "excused"


def _instance(tmp_path: Path, label: str, status: str, stamp: str, group: str = "g1") -> Path:
    """One of the runs `debian-cloud-tests run --instances N` launched together."""
    return write(tmp_path, f"{group}-{label}.xml", [case("bvt.a", status, f"broken on {label}"),
                                                    case("bvt.z")],
                 {**props(), "parallel_run": group, "parallel_label": label}, timestamp=stamp)


def test_instances_tested_together_are_not_retries_of_one_another(tmp_path: Path) -> None:
    """Two instances launched together: a failure on one is a failure, whichever ended first
    (read as attempts in time order, a later pass would have made it merely flaky)."""
    failed = _instance(tmp_path, "qemu-1", "failed", "2026-01-01T10:00:00+00:00")
    passed = _instance(tmp_path, "qemu-2", "passed", "2026-01-01T10:00:01+00:00")
    v = judge([failed, passed], "[flaky]\nallowed = true\n")
    assert kinds(v) == ["failed"] and v.statuses()["bvt.a"] == "failed"
    assert "qemu-1: broken on qemu-1" in v.reasons[0].message
    assert v.statuses()["bvt.z"] == "passed"


def test_a_later_batch_of_instances_is_a_retry_of_an_earlier_one(tmp_path: Path) -> None:
    first = [_instance(tmp_path, lab, st, "2026-01-01T10:00:00+00:00", "g1")
             for lab, st in (("qemu-1", "failed"), ("qemu-2", "passed"))]
    again = [_instance(tmp_path, lab, "passed", "2026-01-01T11:00:00+00:00", "g2")
             for lab in ("qemu-1", "qemu-2")]
    v = judge([*again, *first], "[flaky]\nallowed = true\n")
    assert v.publish and v.statuses()["bvt.a"] == "flaky"


def test_timestamps_of_runners_in_other_time_zones_are_ordered_as_instants(tmp_path: Path) -> None:
    """A failure at 10:00 UTC (written without an offset, read as UTC) and a pass at 10:30 UTC
    written by a runner two hours ahead: the failure came first, so the check is flaky."""
    failed = write(tmp_path, "a.xml", [case("bvt.a", "failed", "race")], timestamp="2026-01-01T10:00:00")
    passed = write(tmp_path, "b.xml", [case("bvt.a")], timestamp="2026-01-01T12:30:00+02:00")
    v = judge([passed, failed], "[flaky]\nallowed = true\n")
    assert v.publish and v.statuses()["bvt.a"] == "flaky" and v.flaky[0].history == "failed, passed"
    # and the other way round: a pass at 09:00 UTC written two hours ahead, then a failure
    early = write(tmp_path, "c.xml", [case("bvt.a")], timestamp="2026-01-01T11:00:00+02:00")
    late = write(tmp_path, "d.xml", [case("bvt.a", "failed", "broke")], timestamp="2026-01-01T10:00:00")
    assert kinds(judge([late, early], "[flaky]\nallowed = true\n")) == ["failed"]


PROVIDER_ERRORS = '[provider_errors]\npatterns = ["QuotaExceeded"]\n'


def test_a_reclassified_failure_then_a_pass_is_flaky(tmp_path: Path) -> None:
    """[provider_errors] turns a failure into "could not test" when it is the last word; a pass
    after it does not make the failure disappear: the check is flaky, and held as such."""
    first = write(tmp_path, "a.xml", [case("bvt.a", "failed", "QuotaExceeded in zone b")],
                  timestamp="2026-01-01T10:00:00+00:00")
    rerun = write(tmp_path, "b.xml", [case("bvt.a")], timestamp="2026-01-01T11:00:00+00:00")
    v = judge([first, rerun], PROVIDER_ERRORS + "[flaky]\nallowed = false\n")
    assert kinds(v) == ["flaky"] and v.statuses()["bvt.a"] == "flaky"
    assert "QuotaExceeded" in v.flaky[0].message
    in_one_report = write(tmp_path, "c.xml", [
        '<testcase classname="bvt" name="test_b"><properties><property name="check_id" value="bvt.b"/>'
        '</properties><rerunFailure message="QuotaExceeded"/></testcase>'])
    assert kinds(judge([in_one_report], PROVIDER_ERRORS)) == ["flaky"]


def test_a_reclassified_failure_as_the_last_attempt_is_could_not_test(tmp_path: Path) -> None:
    first = write(tmp_path, "a.xml", [case("bvt.a")], timestamp="2026-01-01T10:00:00+00:00")
    rerun = write(tmp_path, "b.xml", [case("bvt.a", "failed", "QuotaExceeded")],
                  timestamp="2026-01-01T11:00:00+00:00")
    assert kinds(judge([first, rerun], PROVIDER_ERRORS)) == ["could-not-test"]

"""Comparison with the last published image: bounds hold, missing facts are only "not compared"."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from debian_cloud_tests.gate import GateInputError, baseline, junit
from debian_cloud_tests.gate.debversion import compare
from debian_cloud_tests.gate.policy import RegressionPolicy, parse_policy
from debian_cloud_tests.gate.verdict import Verdict, evaluate
from tests.test_gate_support import BVT, case, props, write

BOUNDS = """[regression]
image_size_pct = 20
boot_seconds_pct = 50
boot_seconds_abs = 30
cloud_init_seconds_pct = 100
"""
OLD = {"image_size": 1000 * 2**20, "boot_seconds": 40.0, "cloud_init_wait_seconds": 5.0,
       "packages": {"openssh-server": "1:9.2p1-2+deb12u2", "curl": "7.88.1-10", "vim-tiny": "2:9.0-1"},
       "listening_sockets": ["tcp 0.0.0.0:22", "udp 0.0.0.0:68"]}


def candidate(tmp_path: Path, name: str = "new.xml", **facts: object) -> Path:
    values = {**OLD, **facts}
    extra = {k: json.dumps(v) if isinstance(v, dict | list) else str(v) for k, v in values.items()
             if v is not None}
    return write(tmp_path, name, [case(c) for c in BVT], props(**extra))


def judge(tmp_path: Path, results: list[Path], policy: str = BOUNDS, old: object = None) -> Verdict:
    facts = tmp_path / "baseline.json"
    facts.write_text(json.dumps(OLD if old is None else old))
    return evaluate(junit.load(results), parse_policy(policy, "policy.toml"), today=dt.date(2026, 1, 1),
                    baselines=baseline.load(facts))


def holds(v: Verdict) -> list[str]:
    return [d.fact for d in v.differences if d.hold]


def test_unchanged_image_publishes_without_differences(tmp_path: Path) -> None:
    v = judge(tmp_path, [candidate(tmp_path)])
    assert v.publish and v.differences == [] and v.not_compared == []


def test_boot_time_holds_only_beyond_both_bounds(tmp_path: Path) -> None:
    slower = judge(tmp_path, [candidate(tmp_path, "a.xml", boot_seconds=65.0)])  # +62 %, +25 s
    assert slower.publish and slower.differences[0].fact == "boot_seconds"
    much = judge(tmp_path, [candidate(tmp_path, "b.xml", boot_seconds=75.0)])  # +87 %, +35 s
    assert not much.publish and holds(much) == ["boot_seconds"] and much.reasons[0].kind == "regression"
    assert "allowed: at most +50% or +30 s" in much.reasons[0].message


def test_a_single_bound_is_enough_when_only_one_is_set(tmp_path: Path) -> None:
    v = judge(tmp_path, [candidate(tmp_path, boot_seconds=61.0)], "[regression]\nboot_seconds_pct = 50\n")
    assert holds(v) == ["boot_seconds"]


def test_faster_boot_is_shown_but_does_not_hold(tmp_path: Path) -> None:
    v = judge(tmp_path, [candidate(tmp_path, boot_seconds=10.0)])
    assert v.publish and v.differences[0].change.startswith("-30.0 s")


def test_image_size_growth(tmp_path: Path) -> None:
    assert judge(tmp_path, [candidate(tmp_path, "a.xml", image_size=1150 * 2**20)]).publish
    v = judge(tmp_path, [candidate(tmp_path, "b.xml", image_size=1300 * 2**20)])
    assert holds(v) == ["image_size"]


def test_cloud_init_time_growth(tmp_path: Path) -> None:
    v = judge(tmp_path, [candidate(tmp_path, cloud_init_wait_seconds=10.5)])
    assert holds(v) == ["cloud_init_wait_seconds"]


def test_without_bounds_differences_are_only_reported(tmp_path: Path) -> None:
    v = judge(tmp_path, [candidate(tmp_path, boot_seconds=400.0, image_size=5 * 2**30)], "")
    assert v.publish and {d.fact for d in v.differences} == {"boot_seconds", "image_size"}


def test_package_changes_are_reported(tmp_path: Path) -> None:
    packages = {"openssh-server": "1:9.2p1-2+deb12u3", "curl": "7.88.1-9", "vim-tiny": "2:9.0-1",
                "htop": "3.2.2-2"}
    v = judge(tmp_path, [candidate(tmp_path, packages=packages)])
    [diff] = v.differences
    assert v.publish and diff.details["added"] == {"htop": "3.2.2-2"}
    assert diff.details["upgraded"] == {"openssh-server": ["1:9.2p1-2+deb12u2", "1:9.2p1-2+deb12u3"]}
    assert diff.details["downgraded"] == {"curl": ["7.88.1-10", "7.88.1-9"]}


def test_package_removal_holds_when_the_policy_says_so(tmp_path: Path) -> None:
    packages = {"openssh-server": "1:9.2p1-2+deb12u2", "curl": "7.88.1-10"}
    assert judge(tmp_path, [candidate(tmp_path, "a.xml", packages=packages)]).publish
    v = judge(tmp_path, [candidate(tmp_path, "b.xml", packages=packages)],
              '[regression]\npackages = "hold-removed"\n')
    assert holds(v) == ["packages"] and v.differences[0].details["removed"] == {"vim-tiny": "2:9.0-1"}


def test_new_listening_socket_holds_by_default(tmp_path: Path) -> None:
    sockets = ["tcp 0.0.0.0:22", "tcp 0.0.0.0:111"]
    v = judge(tmp_path, [candidate(tmp_path, "a.xml", listening_sockets=sockets)], "")
    assert holds(v) == ["listening_sockets"]
    assert v.differences[0].details == {"new": ["tcp 0.0.0.0:111"], "gone": ["udp 0.0.0.0:68"]}
    report = judge(tmp_path, [candidate(tmp_path, "b.xml", listening_sockets=sockets)],
                   '[regression]\nlistening_sockets = "report"\n')
    assert report.publish and report.differences


def test_missing_facts_are_not_compared_and_do_not_hold(tmp_path: Path) -> None:
    v = judge(tmp_path, [candidate(tmp_path, boot_seconds=None, packages=None)],
              old={"image_size": OLD["image_size"], "boot_seconds": 1.0})
    assert v.publish
    assert "qemu/amd64/bios: boot_seconds: missing in the results" in v.not_compared
    assert "qemu/amd64/bios: cloud_init_wait_seconds: missing in the baseline" in v.not_compared
    assert "qemu/amd64/bios: packages: missing in the baseline" in v.not_compared


def test_baseline_for_another_arch_is_not_compared(tmp_path: Path) -> None:
    v = judge(tmp_path, [candidate(tmp_path, boot_seconds=500.0)], old={**OLD, "arch": "arm64"})
    assert v.publish and v.not_compared == ["qemu/amd64/bios: no baseline for this provider/arch"]


def test_slowest_rerun_counts(tmp_path: Path) -> None:
    fast = candidate(tmp_path, "a.xml", boot_seconds=40.0)
    slow = candidate(tmp_path, "b.xml", boot_seconds=90.0)
    assert holds(judge(tmp_path, [fast, slow])) == ["boot_seconds"]


def test_baseline_from_a_junit_report(tmp_path: Path) -> None:
    old = candidate(tmp_path, "old.xml")
    [facts] = baseline.load(old)
    assert facts.numbers["boot_seconds"] == 40.0 and facts.packages == OLD["packages"]
    assert facts.arch == "amd64"


@pytest.mark.parametrize(("content", "problem"), [
    ("{not json", "unreadable baseline facts"),
    ('{"boot_second": 3}', "unknown fact 'boot_second'"),
    ('{"boot_seconds": "fast"}', "not a number"),
    ('{"packages": ["a"]}', "JSON object of package name to version"),
    ('{"listening_sockets": "22"}', "not a JSON list"),
    ("[1]", "not a JSON object"),
])
def test_bad_facts_files_are_input_errors(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "facts.json"
    path.write_text(content)
    with pytest.raises(GateInputError, match=problem):
        baseline.load(path)


def test_malformed_json_property_in_results_is_an_input_error(tmp_path: Path) -> None:
    path = write(tmp_path, "r.xml", [case("bvt.a")], props(packages="{broken"))
    with pytest.raises(GateInputError, match="property packages"):
        judge(tmp_path, [path])


@pytest.mark.parametrize(("older", "newer"), [
    ("1.9", "1.10"), ("1.0~rc1", "1.0"), ("2.0", "1:0.1"), ("2.0-1", "2.0-1+deb12u1"), ("1.0", "1.0a"),
    ("9.2p1-2+deb12u2", "9.2p1-2+deb12u3"), ("1.0~~", "1.0~"),
])
def test_debian_version_order(older: str, newer: str) -> None:
    assert compare(older, newer) < 0 < compare(newer, older) and compare(older, older) == 0


def _facts(**numbers: float) -> baseline.Facts:
    return baseline.Facts("x", numbers={k: float(v) for k, v in numbers.items()})


def test_a_throughput_drop_beyond_the_bound_holds() -> None:
    bounds = RegressionPolicy(throughput_drop_pct=30)
    diffs, _ = baseline.compare(_facts(throughput_mbps=100), _facts(throughput_mbps=60), bounds, "t")
    drop = next(d for d in diffs if d.fact == "throughput_mbps")
    assert drop.hold and drop.change == "-40.0 Mbit/s (-40%)" and drop.allowed == "a drop of at most 30%"
    diffs, _ = baseline.compare(_facts(throughput_mbps=100), _facts(throughput_mbps=80), bounds, "t")
    assert not next(d for d in diffs if d.fact == "throughput_mbps").hold
    diffs, _ = baseline.compare(_facts(throughput_mbps=100), _facts(throughput_mbps=300), bounds, "t")
    assert not next(d for d in diffs if d.fact == "throughput_mbps").hold  # faster: reported


def test_throughput_is_compared_only_where_a_run_measured_it() -> None:
    _, missing = baseline.compare(_facts(), _facts(), RegressionPolicy(), "t")
    assert not any("throughput" in m for m in missing)
    _, missing = baseline.compare(_facts(), _facts(throughput_mbps=50), RegressionPolicy(), "t")
    assert "throughput_mbps: missing in the baseline" in missing


def test_over_reruns_the_lowest_throughput_counts() -> None:
    class Run:
        def __init__(self, mbps: str) -> None:
            self.mbps = mbps

        def prop(self, name: str) -> str:
            return self.mbps if name == "throughput_mbps" else ""

    facts = baseline.from_runs([Run("90.5"), Run("40.1"), Run("70")], "x")  # type: ignore[list-item]
    assert facts.numbers["throughput_mbps"] == 40.1

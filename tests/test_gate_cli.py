"""The command: exit codes, one-line errors, and every output format."""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from debian_cloud_tests.gate import EXIT_HOLD, EXIT_INPUT, EXIT_PUBLISH, junit
from debian_cloud_tests.gate.cli import add_parser, main, run
from debian_cloud_tests.gate.policy import Policy
from debian_cloud_tests.gate.report import print_terminal
from debian_cloud_tests.gate.verdict import evaluate
from tests.test_gate_support import REALISTIC, SHA_A, SHA_B, case, passing, props, write, write_policy

ROOT = Path(__file__).resolve().parent.parent
ESC = "\x1b["


def gate(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _mixed(tmp_path: Path) -> list[Path]:
    """Two targets: amd64 with a failure, a provider error, a flaky check and an excused failure."""
    amd = write(tmp_path, "results-qemu-amd64.xml", [
        case("bvt.ssh_login_default_user"), case("bvt.system_running", "failed", "state 'degraded'"),
        case("bvt.known", "failed", "known bug"), case("bvt.wobbly", reruns=1),
        case("bvt.console", "error", "no machine: quota exceeded")],
        props(boot_seconds="80", packages='{"a": "1.0", "b": "2.0"}'))
    arm = write(tmp_path, "results-qemu-arm64.xml", [case("bvt.ssh_login_default_user")],
                props(arch="arm64", image_sha256=SHA_B))
    return [amd, arm]


MIXED_POLICY = """[required]
suites = ["bvt"]
checks = ["bvt.grown"]
[[deny]]
id = "bvt.known"
tracker = "https://bugs.debian.org/42"
expires = 2099-01-01
[[deny]]
id = "bvt.gone"
tracker = "https://bugs.debian.org/43"
[flaky]
allowed = true
[regression]
boot_seconds_pct = 10
packages = "hold-removed"
"""


def test_publish_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = gate(capsys, passing(tmp_path), "--policy", ROOT / "examples" / "policy.toml",
                        "--image-sha256", SHA_A)
    # The example policy requires more bvt checks than this report has.
    assert rc == EXIT_HOLD and out.startswith("HOLD") and "Required checks missing" in out and err == ""
    rc, out, err = gate(capsys, passing(tmp_path, "b.xml"), "--image-sha256", SHA_A)
    assert rc == EXIT_PUBLISH and out.splitlines()[0].startswith("PUBLISH") and err == ""


def test_hold_exits_1_and_lists_every_reason_grouped(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    policy = write_policy(tmp_path, MIXED_POLICY)
    rc, out, _ = gate(capsys, *_mixed(tmp_path), "--policy", policy, "--today", "2026-06-01")
    assert rc == EXIT_HOLD
    lines = out.splitlines()
    assert lines[0].startswith("HOLD — ")
    order = ["Failed checks (image defects):", "Could not test (provider errors):",
             "Required checks missing:", "Flaky (failed, then passed on a rerun):",
             "Excused by the deny list:", "Stale deny entries (excused nothing):"]
    assert [line for line in lines if line in order] == order
    assert "https://bugs.debian.org/42" in out and "quota exceeded" in out and ESC not in out


def test_realistic_report_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "results-qemu-amd64.xml"
    path.write_text(REALISTIC)
    rc, out, _ = gate(capsys, path, "--image-sha256", SHA_A)
    assert rc == EXIT_HOLD and "bvt.system_running [qemu/amd64/bios]: AssertionError" in out


def test_quiet_prints_only_the_verdict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = gate(capsys, passing(tmp_path), "-q")
    assert rc == 0 and len(out.splitlines()) == 1


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    facts = tmp_path / "old.json"
    facts.write_text('{"boot_seconds": 30, "packages": {"a": "1.0", "b": "2.0", "c": "1"}}')
    out = tmp_path / "gate.json"
    rc, _, _ = gate(capsys, *_mixed(tmp_path), "--policy", write_policy(tmp_path, MIXED_POLICY),
                    "--baseline", facts, "--json", out, "--today", "2026-06-01")
    doc = json.loads(out.read_text())
    assert rc == EXIT_HOLD and doc["verdict"] == "hold" and doc["schema_version"] == 1
    assert {"verdict", "reasons", "checks", "excused", "stale", "flaky", "regressions"} <= doc.keys()
    assert doc["checks"]["bvt.system_running"] == "failed" and doc["checks"]["bvt.console"] == "error"
    assert doc["checks"]["bvt.known"] == "excused" and doc["checks"]["bvt.grown"] == "missing"
    assert doc["targets"]["qemu/arm64/bios"]["checks"] == {"bvt.grown": "missing",
                                                           "bvt.ssh_login_default_user": "passed"}
    assert doc["excused"][0]["tracker"] == "https://bugs.debian.org/42"
    assert [s["id"] for s in doc["stale"]] == ["bvt.gone"] and doc["flaky"][0]["check"] == "bvt.wobbly"
    kinds = {r["kind"] for r in doc["reasons"]}
    assert kinds == {"failed", "could-not-test", "missing", "regression"}
    regressions = {r["fact"]: r for r in doc["regressions"]}
    assert regressions["boot_seconds"]["hold"] and regressions["packages"]["details"]["removed"] == {"c": "1"}
    assert "qemu/arm64/bios: no baseline for this provider/arch" not in doc["not_compared"]  # fits any arch


def test_markdown_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    facts = tmp_path / "old.json"
    facts.write_text('{"boot_seconds": 30, "packages": {"a": "1.0", "b": "2.0", "c": "1"}}')
    out = tmp_path / "gate.md"
    gate(capsys, *_mixed(tmp_path), "--policy", write_policy(tmp_path, MIXED_POLICY), "--baseline", facts,
         "--markdown", out, "--today", "2026-06-01")
    text = out.read_text()
    assert text.startswith("# Publication gate: HOLD\n")
    for heading in ("## Failed checks (image defects)", "## Could not test (provider errors)",
                    "## Excused by the deny list", "## Stale deny entries (excused nothing)",
                    "## Baseline differences", "## Regressions beyond the bounds"):
        assert heading in text
    assert "| qemu/amd64/bios | 1 | 1 | 1 | 0 | 1 | 1 | 0 | 1 |" in text
    assert "removed: c 1" in text and "state 'degraded'" in text


def test_merged_junit_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "gate-junit.xml"
    gate(capsys, *_mixed(tmp_path), "--policy", write_policy(tmp_path, MIXED_POLICY), "--junit-out", out,
         "--today", "2026-06-01")
    root = ET.parse(out).getroot()
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"gate qemu/amd64/bios", "gate qemu/arm64/bios", "gate"}
    cases = {c.get("name"): c for c in suites["gate qemu/amd64/bios"].findall("testcase")}
    assert cases["bvt.system_running"].find("failure") is not None
    assert cases["bvt.console"].find("error") is not None
    assert cases["bvt.known"].find("skipped") is not None
    assert cases["bvt.grown"].find("failure") is not None
    assert not list(cases["bvt.ssh_login_default_user"])
    verdict = suites["gate"].find("testcase[@name='verdict']")
    assert verdict is not None and verdict.find("failure") is not None


def test_publishing_junit_has_a_passing_verdict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "gate-junit.xml"
    assert gate(capsys, passing(tmp_path), "--junit-out", out)[0] == 0
    verdict = ET.parse(out).getroot().find("testsuite[@name='gate']/testcase[@name='verdict']")
    assert verdict is not None and verdict.find("failure") is None


@pytest.mark.parametrize("content", ["", "<testsuites><testsuite>", "<html/>"])
def test_unusable_report_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               content: str) -> None:
    bad = tmp_path / "results.xml"
    bad.write_text(content)
    rc, out, err = gate(capsys, passing(tmp_path, "good.xml"), bad)
    assert rc == EXIT_INPUT and out == "" and len(err.splitlines()) == 1 and str(bad) in err
    assert "Traceback" not in err


def test_duplicate_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = passing(tmp_path)
    rc, _, err = gate(capsys, path, path)
    assert rc == EXIT_INPUT and "given twice" in err and len(err.splitlines()) == 1


def test_policy_error_exits_2_with_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = write_policy(tmp_path, "[flaky]\nallowed = true\nmaximum = 3\n")
    rc, _, err = gate(capsys, passing(tmp_path), "--policy", policy)
    assert rc == EXIT_INPUT and f"{policy}:3: unknown key 'maximum'" in err and "did you mean 'max'" in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("argv", [[], ["--bogus"], ["--image-sha256", "abc"], ["--today", "tomorrow"]])
def test_usage_errors_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           argv: list[str]) -> None:
    args = [*argv, str(passing(tmp_path))] if argv else []
    with pytest.raises(SystemExit) as exit_:
        main(args)
    err = capsys.readouterr().err
    assert exit_.value.code == EXIT_INPUT and len(err.splitlines()) == 1 and "--help" in err


def test_unwritable_output_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = gate(capsys, passing(tmp_path), "--json", tmp_path / "no" / "such" / "dir.json")
    assert rc == EXIT_INPUT and "cannot write" in err


def test_wrong_image_holds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = gate(capsys, passing(tmp_path), "--image-sha256", SHA_B)
    assert rc == EXIT_HOLD and "Property problems" in out


def test_add_parser_wires_the_subcommand(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="debian-cloud-tests")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["gate", str(passing(tmp_path)), "-q"])
    assert args.func is run and args.func(args) == EXIT_PUBLISH
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["gate", "--nope", "x.xml"])
    assert exit_.value.code == EXIT_INPUT and len(capsys.readouterr().err.splitlines()) == 1


def test_module_runs_standalone(tmp_path: Path) -> None:
    path = passing(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "debian_cloud_tests.gate", str(path)], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == EXIT_PUBLISH and proc.stdout.startswith("PUBLISH") and ESC not in proc.stdout


def test_terminal_colour_only_on_a_tty(tmp_path: Path) -> None:
    verdict = evaluate(junit.load([passing(tmp_path)]), Policy(), today=dt.date(2026, 1, 1))

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    plain, tty = io.StringIO(), Tty()
    print_terminal(verdict, plain)
    print_terminal(verdict, tty)
    assert ESC not in plain.getvalue() and ESC in tty.getvalue()
    assert plain.getvalue().splitlines()[0] in tty.getvalue()


def test_terminal_stays_short_when_many_checks_share_a_cause(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    cases = [case("bvt.a")] + [case(f"bvt.c{n}", "skipped", "needs a machine") for n in range(40)]
    cases += [case(f"bvt.f{n}", "failed", f"broken {n}") for n in range(30)]
    path = write(tmp_path, "r.xml", cases)
    policy = write_policy(tmp_path, '[required]\nsuites = ["bvt"]\n')
    rc, out, _ = gate(capsys, path, "--policy", policy, "--json", tmp_path / "g.json")
    assert rc == EXIT_HOLD and len(out.splitlines()) < 30
    assert "40 checks [qemu/amd64/bios] (bvt.c0, bvt.c1, bvt.c2 and 37 more): required but skipped" in out
    assert "… and 19 more (see --markdown or --json)" in out
    assert len(json.loads((tmp_path / "g.json").read_text())["reasons"]) == 70

"""`gate --registered ID@REGION`: each registered copy of the image must have a run on it, unless
the policy's [publication] accept_untested names its region."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from debian_cloud_tests.gate import GateInputError, junit
from debian_cloud_tests.gate.policy import parse_policy
from debian_cloud_tests.gate.verdict import evaluate
from tests.test_gate_completeness import ours
from tests.test_gate_support import TODAY, kinds

COPIES = (("ami-0aaaaaaaaaaaaaaa1", "eu-west-3"), ("ami-0bbbbbbbbbbbbbbb2", "us-east-1"))


def on_copy(tmp_path: Path, image: str, region: str) -> Path:
    return ours(tmp_path, f"{region}.xml", provider="aws", registered_image=image,
                registered_region=region)


def judged(paths: list[Path], policy: str = ""):
    return evaluate(junit.load(paths), parse_policy(policy, "policy.toml"), today=TODAY,
                    registered=COPIES)


def test_every_copy_tested_publishes(tmp_path: Path) -> None:
    v = judged([on_copy(tmp_path, *copy) for copy in COPIES])
    assert v.publish, v.reasons


def test_a_copy_without_a_run_holds_naming_it(tmp_path: Path) -> None:
    v = judged([on_copy(tmp_path, *COPIES[0])])
    assert kinds(v) == ["missing-target"], v.reasons
    assert "ami-0bbbbbbbbbbbbbbb2 registered in us-east-1 was not tested" in v.reasons[0].message


def test_a_run_on_another_image_in_that_region_does_not_count(tmp_path: Path) -> None:
    v = judged([on_copy(tmp_path, *COPIES[0]), on_copy(tmp_path, "ami-0ccccccccccccccc3", "us-east-1")])
    assert kinds(v) == ["missing-target"], v.reasons


def test_the_policy_may_accept_a_region_untested(tmp_path: Path) -> None:
    v = judged([on_copy(tmp_path, *COPIES[0])], '[publication]\naccept_untested = ["us-east-1"]\n')
    assert v.publish, v.reasons


def test_a_bad_publication_table_is_an_input_error() -> None:
    with pytest.raises(GateInputError, match="accept_untested"):
        parse_policy('[publication]\naccept_untested = "us-east-1"\n', "policy.toml")
    with pytest.raises(GateInputError, match="untested"):
        parse_policy('[publication]\nuntested = ["us-east-1"]\n', "policy.toml")


def test_a_malformed_registered_copy_is_one_line_and_exit_2(tmp_path: Path) -> None:
    report = on_copy(tmp_path, *COPIES[0])
    proc = subprocess.run([sys.executable, "-m", "debian_cloud_tests.gate", str(report),
                           "--registered", "ami-0aaaaaaaaaaaaaaa1"], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "IMAGE_ID@REGION" in proc.stderr

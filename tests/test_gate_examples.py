"""The shipped examples and the reference stay true to the code: valid, documented, wired as described."""

from __future__ import annotations

from pathlib import Path

import yaml

from debian_cloud_tests.gate.policy import (
    ACCEPT_KEYS,
    DENY_KEYS,
    RULE_KEYS,
    TARGET_KEYS,
    TOP_KEYS,
    PropertiesPolicy,
    RegressionPolicy,
    load_policy,
    parse_policy,
)

ROOT = Path(__file__).resolve().parent.parent
GATE_COMMAND = ("debian-cloud-tests gate results-*.xml --policy examples/policy.toml --markdown gate.md "
                "--json gate.json --junit-out gate-junit.xml")


def test_every_policy_key_is_documented() -> None:
    doc = (ROOT / "docs" / "gate.md").read_text()
    keys = {*TOP_KEYS, *RULE_KEYS, *DENY_KEYS, *TARGET_KEYS, *ACCEPT_KEYS,
            *PropertiesPolicy.__dataclass_fields__, *RegressionPolicy.__dataclass_fields__,
            "allowed", "max", "patterns"}
    undocumented = sorted(k for k in keys if f"`{k}`" not in doc and f"[{k}]" not in doc)
    assert undocumented == []


def test_gitlab_pipeline_builds_tests_gates_publishes() -> None:
    ci = yaml.safe_load((ROOT / "examples" / "gitlab-ci.yml").read_text())
    assert ci["stages"] == ["build", "test", "gate", "publish"]
    test_script = " ".join(ci["test"]["script"])
    assert "pytest --provider=$PROVIDER --image=$IMAGE --arch=$ARCH --junitxml=results-$PROVIDER-$ARCH.xml" \
        in test_script
    assert ci["test"]["parallel"]["matrix"][0].keys() == {"PROVIDER", "ARCH"}
    gate = ci["gate"]
    assert GATE_COMMAND in " ".join(" ".join(line.split()) for line in gate["script"])
    assert gate["when"] == "always" and gate["artifacts"]["reports"]["junit"] == "gate-junit.xml"
    assert "gate" in ci["publish"]["needs"]


def test_github_workflow_gates_before_publishing() -> None:
    wf = yaml.safe_load((ROOT / "examples" / "github-actions.yml").read_text())
    jobs = wf["jobs"]
    assert jobs["publish"]["needs"] == "gate" and "test" in jobs["gate"]["needs"]
    assert any("debian-cloud-tests gate" in step.get("run", "") for step in jobs["gate"]["steps"])


def test_example_deny_templates_are_valid_once_uncommented() -> None:
    text = (ROOT / "examples" / "policy.toml").read_text()
    keys = ("[[deny]]", "id ", "tracker ", "reason ", "expires ", "arches ", "providers ", "warn ",
            "[[accept_filter]]", "[[require_target]]", "provider ", "arch ", "firmware ", "suites ",
            "keyword ")
    live = "\n".join(line[2:] if line.startswith("# ") and line[2:].startswith(keys) else line
                     for line in text.splitlines())
    policy = parse_policy(live, "policy.toml")
    assert [e.warn for e in policy.deny] == [False, True]
    assert [t.label for t in policy.require_targets] == ["qemu/*/uefi/*"]
    assert [(f.suites, f.keyword) for f in policy.accept_filters] == [(("reboot",), "not reboot")]
    assert load_policy(ROOT / "examples" / "policy.toml").deny == ()

"""docs/audit-coverage.md: built from the rule lists of ssg-debian and lynis as setup.sh unpacks
them, every rule accounted for, every check it names in the catalogue, the published copy current."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from debian_cloud_tests import catalogue
from debian_cloud_tests.audit import coverage, references
from debian_cloud_tests.audit.references import Rule
from debian_cloud_tests.errors import MissingDependencyError

DOC = Path(__file__).resolve().parent.parent / "docs" / "audit-coverage.md"


@pytest.fixture(scope="module")
def built() -> tuple[list[coverage.Entry], list[str], dict[str, str]]:
    try:
        return coverage.build()
    except MissingDependencyError as exc:
        if os.environ.get("DCT_E2E") == "require":
            pytest.fail(str(exc))
        pytest.skip(str(exc))


def test_the_references_hold_the_profiles_and_categories_we_name(built) -> None:
    _, _, versions = built
    assert set(versions) == {"ssg-debian", "lynis"}
    ssg, lynis = references.ssg_rules(references.root()), references.lynis_rules(references.root())
    assert {s for r in ssg for s in r.scope} == set(references.SSG_PROFILES)
    assert {s for r in lynis for s in r.scope} == {
        *references.LYNIS_CATEGORIES, *(f"plugin_{p}" for p in references.LYNIS_PLUGINS), "lynis"}
    assert {r.id for r in lynis if r.scope == ("lynis",)} == set(references.LYNIS_OWN)
    assert len(ssg) >= 200 and len(lynis) >= 150


def test_every_rule_is_covered_or_explained_and_no_entry_is_stale(built) -> None:
    _, problems, _ = built
    assert not problems, "\n".join(problems)


def test_every_check_named_is_in_the_catalogue(built) -> None:
    entries, _, _ = built
    ids = {c.id for c in catalogue.collect()}
    assert not coverage.unknown_checks(entries, ids)


def test_docs_audit_coverage_is_current(built) -> None:
    entries, _, versions = built
    assert DOC.read_text() == coverage.render(entries, versions), \
        "docs/audit-coverage.md is stale: debian-cloud-tests audit-coverage > docs/audit-coverage.md"


RULES = [Rule("ssg", "sshd_disable_root_login", "Disable SSH Root Login", ("standard",)),
         Rule("ssg", "audit_rules_login_events", "Record logins", ("standard",)),
         Rule("ssg", "audit_rules_time_stime", "Record time changes", ("standard",)),
         Rule("lynis", "SSH-7408", "Check SSH specific defined options", ("ssh",))]


def test_a_rule_without_entry_a_stale_entry_and_an_unknown_check_are_reported() -> None:
    mapping = {"ssg": {"sshd_disable_root_login": ["config.no_such_check"],
                       "audit_rules_*": "auditd is a site's choice",
                       "removed_rule": "gone from the references"},
               "lynis": {}}
    entries, problems = coverage.join(RULES, mapping)
    assert any("SSH-7408" in p and "no entry" in p for p in problems)
    assert any("'removed_rule' matches no rule" in p for p in problems)
    assert [e.kind for e in entries] == [coverage.COVERED, coverage.NOT_APPLICABLE,
                                         coverage.NOT_APPLICABLE]
    assert coverage.unknown_checks(entries, {"config.other"}) == [
        "ssg rule sshd_disable_root_login names config.no_such_check, which is not a check"]


def test_an_exact_entry_wins_over_a_glob_and_a_gap_is_its_own_kind() -> None:
    mapping = {"ssg": {"sshd_disable_root_login": ["config.root_login_disabled"],
                       "audit_rules_*": "auditd is a site's choice",
                       "audit_rules_time_stime": {"gap": "a check would read the clock rules"}},
               "lynis": {"SSH-*": ["config.root_login_disabled"]}}
    entries, problems = coverage.join(RULES, mapping)
    assert not problems
    kinds = {e.rule.id: e.kind for e in entries}
    assert kinds["audit_rules_time_stime"] == coverage.GAP
    assert kinds["audit_rules_login_events"] == coverage.NOT_APPLICABLE
    assert kinds["SSH-7408"] == coverage.COVERED
    assert "**not covered yet**: a check would read the clock rules" in coverage.render(
        entries, {"ssg-debian": "1"})


def test_a_shared_stricter_reason_goes_to_the_covered_rules_it_lists() -> None:
    mapping = {"ssg": {"sshd_disable_root_login": ["config.root_login_disabled"],
                       "audit_rules_*": "auditd is a site's choice"},
               "lynis": {"SSH-7408": {"checks": ["config.sshd_setting"], "stricter": "its own"}},
               "stricter": {"ssg": {"Debian permits keys": ["sshd_*"]},
                            "lynis": {"shared": ["SSH-*"]}}}
    entries, problems = coverage.join(RULES, mapping)
    assert not problems
    text = {e.rule.id: e.text for e in entries}
    assert text["sshd_disable_root_login"] == "Debian permits keys"
    assert text["SSH-7408"] == "its own"  # an entry's own reason wins
    mapping["stricter"] = {"ssg": {"not covered": ["audit_rules_login_events", "no_such_rule"]}}
    _, problems = coverage.join(RULES, mapping)
    assert problems == ["stricter.ssg names 'audit_rules_login_events', not covered: "
                        "['audit_rules_login_events']",
                        "stricter.ssg names 'no_such_rule', which matches no rule"]


def test_without_references_the_command_says_how_to_get_them(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(references.REFERENCES_ENV, str(tmp_path))
    with pytest.raises(MissingDependencyError, match=r"run scripts/setup\.sh"):
        references.root()

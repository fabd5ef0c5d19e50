"""The policy file: every mistake is an input error naming its line, and the examples are valid."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from debian_cloud_tests.gate import GateInputError
from debian_cloud_tests.gate.policy import Policy, load_policy, parse_policy
from debian_cloud_tests.gate.tomlpos import key_lines, line_of

ROOT = Path(__file__).resolve().parent.parent


def _error(text: str) -> GateInputError:
    with pytest.raises(GateInputError) as err:
        parse_policy(text, "policy.toml")
    return err.value


def test_example_policy_is_valid() -> None:
    policy = load_policy(ROOT / "examples" / "policy.toml")
    assert policy.required and policy.flaky.allowed
    assert "image_sha256" in policy.properties.required
    assert policy.regression.boot_seconds_abs == 30


def test_no_policy_means_strict_defaults() -> None:
    policy = load_policy(None)
    assert policy == Policy()
    assert not policy.flaky.allowed and policy.properties.must_agree == ("image_sha256",)


def test_full_policy_is_read() -> None:
    policy = parse_policy("""
[required]
suites = ["bvt"]
[[required.rule]]
suites = ["config"]
checks = ["net\\\\..*"]
match = "regex"
providers = ["qemu", "aws"]
arches = ["amd64"]
[[deny]]
id = "bvt.x[*]"
tracker = "https://bugs.debian.org/1"
expires = 2026-03-31
releases = ["bookworm"]
warn = true
[flaky]
allowed = true
max = 2
[properties]
required = ["image_sha256"]
must_agree = []
agree_within = []
[provider_errors]
patterns = ["Quota"]
[regression]
image_size_pct = 20
boot_seconds_pct = 50
boot_seconds_abs = 30.5
packages = "hold-removed"
listening_sockets = "report"
""", "p.toml")
    suite_rule, scoped = policy.required
    assert suite_rule.suites == ("bvt",) and scoped.scope.providers == ("qemu", "aws")
    assert scoped.checks[0].matches("net.dns") and not scoped.checks[0].matches("netdns")
    [entry] = policy.deny
    assert entry.expires == dt.date(2026, 3, 31) and entry.warn and entry.line == 10
    assert entry.pattern.matches("bvt.x[amd64]") and not entry.pattern.matches("bvt.xa")
    assert policy.flaky.max == 2 and policy.properties.must_agree == ()
    assert policy.regression.packages == "hold-removed" and policy.regression.boot_seconds_abs == 30.5


@pytest.mark.parametrize(("text", "line", "words"), [
    ("[flaky]\nallowd = true\n", 2, ["unknown key 'allowd' in [flaky]", "did you mean 'allowed'?"]),
    ("[required]\nsuites = ['bvt']\n\n[flakey]\n", 4, ["unknown key 'flakey'", "did you mean 'flaky'?"]),
    ("[[deny]]\nid = 'a'\ntracker = 'https://x'\n"
     "[[deny]]\nid = 'b'\ntracker = 'https://x'\nexpire = 2026-01-01\n", 7,
     ["unknown key 'expire' in [[deny]] #2", "did you mean 'expires'?"]),
    ("[[required.rule]]\nsuites = ['a']\narch = ['amd64']\n", 3, ["did you mean 'arches'?"]),
    ("[regression]\nboot_second_pct = 5\n", 2, ["did you mean 'boot_seconds_pct'?"]),
    ("[properties]\nmust_agre = []\n", 2, ["did you mean 'must_agree'?"]),
])
def test_unknown_keys_name_the_line_and_the_closest_key(text: str, line: int, words: list[str]) -> None:
    err = _error(text)
    assert err.line == line, err
    for word in words:
        assert word in str(err)


@pytest.mark.parametrize(("text", "line", "words"), [
    ("[[deny]]\nid = 'bvt.(x'\nmatch = 'regex'\ntracker = 'https://x'\n", 2, ["invalid regular expression"]),
    ("[required]\nchecks = ['(']\nmatch = 'regex'\n", 2, ["invalid regular expression"]),
    ("[provider_errors]\npatterns = ['[quota']\n", 2, ["invalid regular expression"]),
    ("[[deny]]\nid = 'a'\ntracker = 'https://x'\nexpires = '2026-01-01'\n", 4, ["must be a TOML date"]),
    ("[[deny]]\nid = 'a'\ntracker = 'https://x'\nexpires = 2026-01-01T10:00:00\n", 4, ["TOML date"]),
    ("[[deny]]\nid = 'a'\ntracker = 'https://x'\nexpires = 2026-13-01\n", 4, ["invalid date 2026-13-01"]),
    ("[[deny]]\nid = 'a'\ntracker = 'https://x'\nexpires = 2026-02-30\n", 4, ["invalid date 2026-02-30"]),
    ("[[deny]]\nid = 'a'\ntracker = 'bug 12'\n", 3, ["not a URL"]),
    ("[[deny]]\nid = 'a'\n", 1, ["'tracker' in [[deny]] #1 is required"]),
    ("[[deny]]\ntracker = 'https://x'\n", 1, ["'id' in [[deny]] #1 is required"]),
    ("[[deny]]\nid = 'a'\ntracker = 'https://x'\nmatch = 'fnmatch'\n", 4, ["use one of: 'glob', 'regex'"]),
    ("[flaky]\nallowed = 'yes'\n", 2, ["must be true or false"]),
    ("[flaky]\nmax = -1\n", 2, ["whole number"]),
    ("[flaky]\nmax = 1.5\n", 2, ["whole number"]),
    ("[regression]\nimage_size_pct = '20%'\n", 2, ["must be a number"]),
    ("[regression]\npackages = 'hold'\n", 2, ["'report', 'hold-removed'"]),
    ("[required]\nsuites = 'bvt'\n", 2, ["list of non-empty strings"]),
    ("[required]\nsuites = []\n", 1, ["requires nothing"]),
    ("[[required.rule]]\narches = ['amd64']\n", 1, ["[[required.rule]] #1 requires nothing"]),
    ("deny = 3\n", 1, ["array of tables"]),
    ("[required.rule]\nsuites = ['a']\n", 1, ["write each entry as [[required.rule]]"]),
    ("flaky = 3\n", 1, ["must be a table"]),
    ("[flaky\n", 1, ["invalid TOML"]),
])
def test_invalid_values_are_input_errors_with_a_line(text: str, line: int, words: list[str]) -> None:
    err = _error(text)
    assert err.line == line, err
    assert "\n" not in err.one_line() and err.one_line().startswith(f"policy.toml:{line}: ")
    for word in words:
        assert word in str(err)


def test_missing_policy_file(tmp_path: Path) -> None:
    with pytest.raises(GateInputError, match="no such policy file"):
        load_policy(tmp_path / "nope.toml")


def test_key_lines_follow_tables_arrays_and_dotted_keys() -> None:
    source = ('# c\n[required]\nsuites = ["bvt"]\n[[required.rule]]\ncheck = 1\n[[required.rule]]\n'
              'a.b = 2\ntext = """\nx = 1\n"""\nafter = 3\n')
    lines = key_lines(source)
    assert lines[("required", "suites")] == 3
    assert lines[("required", "rule", 0, "check")] == 5
    assert lines[("required", "rule", 1)] == 6 and lines[("required", "rule", 1, "a", "b")] == 7
    assert ("required", "rule", 1, "x") not in lines and lines[("required", "rule", 1, "after")] == 11
    assert line_of(lines, ("required", "rule", 1, "nothing")) == 6
    assert line_of(lines, ("absent",)) is None

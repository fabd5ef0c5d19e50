"""The deny list: known failures excused until they expire, in scope, and stale when unused."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from debian_cloud_tests import artifacts
from debian_cloud_tests.spec import Arch, LaunchSpec
from tests.test_gate_support import DENY, case, judge, kinds, passing, props, write


def _failing(tmp_path: Path, name: str = "r.xml", **overrides: str | None) -> Path:
    return write(tmp_path, name, [case("bvt.a"), case("bvt.b", "failed", "known bug")], props(**overrides))


def test_deny_entry_excuses_a_known_failure(tmp_path: Path) -> None:
    v = judge([_failing(tmp_path)], DENY.format(id="bvt.b") + "expires = 2026-12-31\n")
    assert v.publish and v.statuses()["bvt.b"] == "excused"
    [excuse] = v.excused
    assert excuse.entry.tracker == "https://bugs.debian.org/1" and excuse.status == "failed"


def test_expired_deny_entry_no_longer_excuses(tmp_path: Path) -> None:
    policy = DENY.format(id="bvt.b") + "expires = 2026-05-31\n"
    v = judge([_failing(tmp_path)], policy)
    assert kinds(v) == ["failed"] and "expired on 2026-05-31" in v.reasons[0].detail
    assert v.expired and v.stale == []
    assert judge([_failing(tmp_path, "s.xml")], policy, today=dt.date(2026, 5, 31)).publish  # last valid day


def test_deny_entry_that_excused_nothing_is_stale(tmp_path: Path) -> None:
    v = judge([passing(tmp_path)], DENY.format(id="bvt.fixed_long_ago"))
    assert v.publish and [e.pattern.text for e in v.stale] == ["bvt.fixed_long_ago"]
    assert v.stale[0].line == 1


def test_deny_entry_scoped_elsewhere_neither_excuses_nor_is_stale(tmp_path: Path) -> None:
    v = judge([_failing(tmp_path)], DENY.format(id="bvt.b") + 'arches = ["arm64"]\n')
    assert kinds(v) == ["failed"] and v.stale == [] and v.excused == []


def test_deny_entry_scope_by_provider_and_release(tmp_path: Path) -> None:
    policy = DENY.format(id="bvt.b") + 'providers = ["qemu"]\nreleases = ["bookworm"]\n'
    assert judge([_failing(tmp_path, "a.xml")], policy).publish
    assert not judge([_failing(tmp_path, "b.xml", os_version_id="13",
                               os_release="Debian GNU/Linux 13 (trixie)")], policy).publish


def test_deny_entry_does_not_excuse_where_the_release_is_unknown(tmp_path: Path) -> None:
    policy = DENY.format(id="bvt.b") + 'releases = ["12"]\n'
    assert not judge([_failing(tmp_path, os_version_id=None, os_release=None)], policy).publish


def test_deny_entry_with_regex(tmp_path: Path) -> None:
    policy = '[[deny]]\nid = "bvt\\\\.(b|c)"\nmatch = "regex"\ntracker = "https://bugs.debian.org/1"\n'
    assert judge([_failing(tmp_path)], policy).publish


def test_warn_only_entry_reports_a_warning_instead_of_holding(tmp_path: Path) -> None:
    v = judge([_failing(tmp_path)], DENY.format(id="bvt.*") + "warn = true\n")
    assert v.publish and v.statuses()["bvt.b"] == "warned" and v.excused[0].entry.warn


def test_deny_entry_scoped_by_release_matches_the_release_under_test(tmp_path: Path) -> None:
    """A trixie image whose guest still says bookworm (an upgrade that did not happen) is a trixie
    result: a bookworm excuse does not apply to it, a trixie one does."""
    bookworm = DENY.format(id="bvt.b") + 'releases = ["bookworm"]\n'
    trixie = DENY.format(id="bvt.b") + 'releases = ["13"]\n'
    run = _failing(tmp_path, release="trixie")  # the guest reports Debian 12 (bookworm)
    assert kinds(judge([run], bookworm)) == ["failed"]
    assert judge([run], trixie).publish


def test_deny_entry_scoped_by_release_falls_back_to_the_guest(tmp_path: Path) -> None:
    policy = DENY.format(id="bvt.b") + 'releases = ["bookworm"]\n'
    assert judge([_failing(tmp_path, release=None)], policy).publish


class _Provider:
    name = "qemu"

    def properties(self) -> dict[str, str]:
        return {}


def test_the_plugin_records_the_release_under_test() -> None:
    spec = LaunchSpec(image="/nonexistent/debian-13-genericcloud-amd64.qcow2", arch=Arch.AMD64,
                      release="trixie")
    assert artifacts.run_properties(_Provider(), spec, "r1")["release"] == "trixie"  # type: ignore[arg-type]
    spec.release = None
    assert "release" not in artifacts.run_properties(_Provider(), spec, "r1")  # type: ignore[arg-type]

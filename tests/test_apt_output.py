"""The apt checks read `apt-get update`'s words: a fetch apt had another way to is no failure,
and an unreachable mirror (the environment, not the image) is told from a broken source."""

from __future__ import annotations

from suites.config.test_apt import apt_update_failures, unreachable


def apt_update_reasons(text: str) -> list[str]:
    return [r for found in apt_update_failures(text.splitlines()).values() for r in found]

FELL_BACK = """Get:1 https://deb.debian.org/debian-security bookworm-security InRelease [34.8 kB]
Ign:2 https://deb.debian.org/debian-security bookworm-security/main amd64 Packages
  404  Not Found [IP: 192.0.2.80 443]
Get:2 https://deb.debian.org/debian-security bookworm-security/main amd64 Packages [2583 kB]
Reading package lists...
"""
OFFLINE = """Err:1 https://deb.debian.org/debian bookworm InRelease
  Could not resolve 'deb.debian.org'
W: Failed to fetch https://deb.debian.org/debian/dists/bookworm/InRelease  Could not resolve 'deb.debian.org'
W: Some index files failed to download. They have been ignored, or old ones used instead.
"""
BROKEN = """Err:1 https://deb.debian.org/debian bookworm-backport InRelease
  404  Not Found [IP: 151.101.2.132 443]
E: The repository 'https://deb.debian.org/debian bookworm-backport Release' does not have a Release file.
"""


def test_a_fetch_apt_found_another_way_to_is_no_failure() -> None:
    assert apt_update_reasons(FELL_BACK) == []


def test_an_unreachable_mirror_is_the_environment() -> None:
    reasons = apt_update_reasons(OFFLINE)
    assert len(reasons) == 2 and unreachable(reasons) == "Could not resolve"


def test_a_missing_suite_is_the_image() -> None:
    reasons = apt_update_reasons(BROKEN)
    assert reasons[0].startswith("404") and len(reasons) == 2 and unreachable(reasons) is None


def test_a_fetch_that_failed_then_came_is_no_failure() -> None:
    text = FELL_BACK.replace("Ign:2", "Err:2")
    assert apt_update_reasons(text) == []


def test_each_failure_says_which_source_it_is_about() -> None:
    """The security check fails on the -security sources' failures, not on another source's."""
    failures = apt_update_failures((BROKEN + FELL_BACK).splitlines())
    assert not [what for what in failures if "-security" in what]
    assert len(failures) == 2

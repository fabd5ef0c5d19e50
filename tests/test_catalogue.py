"""The catalogue is generated from the suites, and the published copy in docs/ is current."""

from __future__ import annotations

from pathlib import Path

from debian_cloud_tests import catalogue

DOC = Path(__file__).resolve().parent.parent / "docs" / "checks.md"


def test_every_check_has_an_id_and_says_what_it_verifies() -> None:
    checks = catalogue.collect()
    assert len(checks) >= 150
    ids = [c.id for c in checks]
    assert len(ids) == len(set(ids)), "duplicate check ids"
    missing = [c.id for c in checks if not c.verifies]
    assert not missing, f"checks without a docstring: {missing}"
    assert {c.suite for c in checks} >= {"bvt", "cloud_init", "config", "network", "metadata",
                                          "reboot", "uniqueness"}


def test_docs_catalogue_is_current() -> None:
    expected = catalogue.render(catalogue.collect(), "markdown") + "\n"
    assert DOC.read_text() == expected, "docs/checks.md is stale: debian-cloud-tests checks " \
        "--format markdown > docs/checks.md"

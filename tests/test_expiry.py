"""Expiry marks: one form per place a cloud keeps them, one reader for all."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from debian_cloud_tests import expiry

NOW = datetime(2026, 12, 5, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize("compact", [False, True])
def test_a_mark_reads_back_as_the_run_start_plus_the_ttl(compact: bool) -> None:
    value = expiry.mark(NOW, compact=compact)
    assert expiry.parse(value) == NOW + expiry.TTL


def test_the_compact_form_fits_gce_labels_and_resource_names() -> None:
    assert re.fullmatch(r"[a-z0-9_-]+", expiry.mark(NOW, compact=True))


@pytest.mark.parametrize("value, when", [
    ("2026-12-05T13:00:00Z", datetime(2026, 12, 5, 13, tzinfo=UTC)),
    ("2026-12-05T14:00:00+01:00", datetime(2026, 12, 5, 13, tzinfo=UTC)),
    ("2026-12-05T13:00:00", datetime(2026, 12, 5, 13, tzinfo=UTC)),  # naive: taken as UTC
    ("20261205t130000z", datetime(2026, 12, 5, 13, tzinfo=UTC)),
])
def test_every_form_written_is_read(value: str, when: datetime) -> None:
    assert expiry.parse(value) == when


@pytest.mark.parametrize("value", ["", None, "never", "tomorrow", "2026-13-45T00:00:00Z"])
def test_what_is_not_a_mark_never_expires(value: str | None) -> None:
    assert expiry.parse(value) is None
    assert not expiry.expired(value, NOW + timedelta(days=365))


def test_expired_only_once_the_mark_has_passed() -> None:
    value = expiry.mark(NOW)
    assert not expiry.expired(value, NOW + expiry.TTL - timedelta(seconds=1))
    assert expiry.expired(value, NOW + expiry.TTL + timedelta(seconds=1))

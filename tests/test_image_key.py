"""A test image's cache key holds the -security index it was built against; offline, the index
last seen here stands in, so cached images are found instead of rebuilt (which offline fails)."""

from __future__ import annotations

from pathlib import Path

import pytest

from debian_cloud_tests.testimage import builder, rootfs


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    said: list[str] = []
    monkeypatch.setenv("DCT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(rootfs, "security_index", lambda release, arch: said.pop(0))
    builder.security_index.cache_clear()
    yield said
    builder.security_index.cache_clear()


def test_offline_the_last_index_seen_keeps_the_key(answers: list[str]) -> None:
    answers += ["f00d", "unreachable"]
    online = builder.Recipe().path()
    builder.security_index.cache_clear()
    assert builder.Recipe().path() == online


def test_the_archive_is_asked_once_per_process(answers: list[str]) -> None:
    answers += ["f00d"]
    assert builder.Recipe().path() == builder.Recipe(defects=()).path()  # one answer was enough


def test_never_seen_offline_is_its_own_key(answers: list[str]) -> None:
    answers += ["unreachable", "f00d"]
    offline = builder.Recipe().path()
    builder.security_index.cache_clear()
    assert builder.Recipe().path() != offline

"""The build cache keeps what was used lately and drops what nobody asked for in two days."""

from __future__ import annotations

import os
import time
from pathlib import Path

from debian_cloud_tests.testimage import cacheprune

DAY = 86400


def _aged(path: Path, days: float, now: float) -> Path:
    os.utime(path, (now - days * DAY, now - days * DAY))
    return path


def test_entries_unused_for_two_days_go_with_their_recipe_the_rest_stay(tmp_path: Path) -> None:
    now = time.time()
    images = tmp_path / "images"
    images.mkdir()
    new = images / "debian-bookworm-test-amd64-good-new.qcow2"
    new.write_bytes(b"new")
    _aged(new, 5, now)  # the one just built keeps its age (a cached build's mtime may be old)
    old = images / "debian-bookworm-test-amd64-good-old.qcow2"
    old.write_bytes(b"old")
    _aged(old, 3, now)
    (images / "debian-bookworm-test-amd64-good-old.json").write_text("{}")
    (images / "debian-bookworm-test-amd64-good-old.lock").touch()
    recent = images / "debian-trixie-test-amd64-good-recent.qcow2"
    recent.write_bytes(b"recent")
    _aged(recent, 1, now)
    building = images / "dct-variant-abc"
    building.mkdir()
    _aged(building, 3, now)

    removed = cacheprune.prune(images, keep=new, now=now)

    assert removed == [old]
    assert sorted(p.name for p in images.iterdir()) == sorted([
        new.name, recent.name, building.name, "debian-bookworm-test-amd64-good-old.lock"])


def test_a_stale_tree_is_removed_whole_and_a_used_one_is_marked(tmp_path: Path) -> None:
    now = time.time()
    trees = tmp_path / "trees"
    stale = trees / "bookworm-amd64-old"
    (stale / "usr" / "bin").mkdir(parents=True)
    (stale / "usr" / "bin" / "sh").write_text("")
    _aged(stale, 4, now)
    used = trees / "bookworm-amd64-used"
    used.mkdir()
    _aged(used, 4, now)
    cacheprune.mark_used(used)  # handed out again just now
    current = trees / "bookworm-amd64-new"
    current.mkdir()

    assert cacheprune.prune(trees, keep=current, now=time.time()) == [stale]
    assert sorted(p.name for p in trees.iterdir()) == ["bookworm-amd64-new", "bookworm-amd64-used"]


def test_a_missing_directory_prunes_nothing(tmp_path: Path) -> None:
    assert cacheprune.prune(tmp_path / "none", keep=tmp_path / "x") == []

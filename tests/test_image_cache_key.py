"""The image cache key depends on the defects a recipe plants, not on the others: adding or
editing one defect rebuilds only the images that plant it."""

from __future__ import annotations

from debian_cloud_tests.testimage import defects
from debian_cloud_tests.testimage.builder import Recipe


def test_helpers_without_any_defect_code() -> None:
    helpers = defects.source_for(())
    assert "@defect(" not in helpers
    assert "def edit(" in helpers and "def unit(" in helpers  # what every defect uses stays
    assert "TRIMMED_MODULES = " in helpers  # and the constants a suite's defects read


def test_key_changes_with_the_planted_defects_only() -> None:
    good, one = Recipe(), Recipe(defects=("sshd-insecure",))
    assert good.image_key() != one.image_key()
    assert one.image_key() == Recipe(defects=("sshd-insecure",)).image_key()
    assert defects.source_for(("sshd-insecure", "failed-unit")) == \
        defects.source_for(("failed-unit", "sshd-insecure"))

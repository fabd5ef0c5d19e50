"""The run facts' property names, check statuses and reasons' kinds are spelled once (junitprops,
gate.junit.Status, gate.reasons.Kind): no reader or writer spells one of its own."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "debian_cloud_tests"
SPELLED = re.compile(r"""\.prop\(\s*["']|Reason\(\s*["']|props\[\s*["'](?:image_sha256|boot_seconds)""")


def test_no_module_spells_a_property_name_or_a_reason_kind() -> None:
    found = [f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}"
             for path in PACKAGE.rglob("*.py")
             for n, line in enumerate(path.read_text().splitlines(), 1) if SPELLED.search(line)]
    assert not found, "spell it through junitprops.Prop or gate.reasons.Kind:\n" + "\n".join(found)


def test_the_names_are_the_ones_the_reports_carry() -> None:
    from debian_cloud_tests.gate.junit import Status
    from debian_cloud_tests.gate.reasons import KINDS, Kind
    from debian_cloud_tests.junitprops import Prop

    assert Prop.IMAGE_SHA256 == "image_sha256" and Prop.EXIT_STATUS == "exit_status"
    assert {s.value for s in Status} == {"passed", "failed", "error", "skipped"}
    assert set(KINDS) == set(Kind)

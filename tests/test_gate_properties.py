"""Suite properties: present, consistent, and about the image being gated; several targets."""

from __future__ import annotations

from pathlib import Path

from tests.test_gate_support import SHA_A, SHA_B, case, judge, kinds, passing, props, write


def test_required_properties(tmp_path: Path) -> None:
    policy = '[properties]\nrequired = ["image_sha256", "provider", "arch"]\n'
    assert judge([passing(tmp_path, "a.xml")], policy).publish
    v = judge([passing(tmp_path, "b.xml", image_sha256=None, arch="")], policy)
    assert kinds(v) == ["property"]
    assert "missing required properties image_sha256, arch" in v.reasons[0].message


def test_results_of_another_image_disagree(tmp_path: Path) -> None:
    a = passing(tmp_path, "a.xml")
    b = passing(tmp_path, "b.xml", image_sha256=SHA_B, firmware="uefi")
    v = judge([a, b])
    assert kinds(v) == ["property"] and "image_sha256 differs" in v.reasons[0].message


def test_agreement_is_within_provider_and_arch_by_default(tmp_path: Path) -> None:
    a = passing(tmp_path, "a.xml")
    b = passing(tmp_path, "b.xml", image_sha256=SHA_B, arch="arm64")
    assert judge([a, b]).publish
    assert kinds(judge([a, b], "[properties]\nagree_within = []\n")) == ["property"]


def test_a_missing_value_is_for_required_to_hold_not_must_agree(tmp_path: Path) -> None:
    a = passing(tmp_path, "a.xml")
    b = passing(tmp_path, "b.xml", image_sha256=None)
    assert judge([a, b], "[properties]\nrequired = []\n").publish
    v = judge([a, b], '[properties]\nrequired = ["image_sha256"]\n')
    assert kinds(v) == ["property"]
    assert "b.xml: missing required property image_sha256" in v.reasons[0].message


def test_image_sha256_option_asserts_the_exact_image(tmp_path: Path) -> None:
    path = passing(tmp_path)
    assert judge([path], image_sha256=(SHA_A.upper(),)).publish
    v = judge([path], image_sha256=(SHA_B,))
    assert kinds(v) == ["property", "property"]
    assert "not the one given by --image-sha256" in v.reasons[0].message
    assert "no results for the --image-sha256 image" in v.reasons[1].message


def test_image_sha256_option_holds_a_run_that_does_not_say(tmp_path: Path) -> None:
    v = judge([passing(tmp_path, image_sha256=None)], image_sha256=(SHA_A,))
    assert any("no image_sha256 property" in r.message for r in v.reasons)



def test_targets_are_judged_separately(tmp_path: Path) -> None:
    amd = passing(tmp_path, "a.xml")
    arm = write(tmp_path, "b.xml", [case("bvt.ssh_login_default_user", "failed", "refused")],
                props(arch="arm64", image_sha256=SHA_B))
    v = judge([amd, arm], '[required]\nsuites = ["bvt"]\n')
    assert [t.target.label for t in v.targets] == ["qemu/amd64/bios", "qemu/arm64/bios"]
    assert kinds(v) == ["failed"] and v.reasons[0].target == "qemu/arm64/bios"
    assert v.statuses()["bvt.ssh_login_default_user"] == "failed"  # the worst over targets

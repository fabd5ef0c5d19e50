"""Where a check applies: each axis of the applies() marker, decided from the run's spec, and the
release read from an image's name or the guest's os-release."""

from __future__ import annotations

import pytest

from debian_cloud_tests import applicability
from debian_cloud_tests.applicability import Not
from debian_cloud_tests.spec import (
    Arch,
    Firmware,
    ImageType,
    LaunchSpec,
    release_from_image_name,
    release_from_os_release,
)


class Item:
    """The two things applicability reads of a collected check: its markers and its id."""

    def __init__(self, **kwargs: object) -> None:
        self.nodeid = "suites/x/test_x.py::test_x"
        self._marks = [pytest.mark.applies(**kwargs).mark]

    def iter_markers(self, name: str):
        return iter(self._marks if name == "applies" else [])


def spec(release: str | None = "bookworm", firmware: Firmware | None = Firmware.BIOS,
         image_type: ImageType | None = ImageType.GENERICCLOUD) -> LaunchSpec:
    return LaunchSpec(image="x", arch=Arch.AMD64, firmware=firmware, image_type=image_type,
                      release=release)


@pytest.mark.parametrize(("wanted", "release", "applies"), [
    ("trixie+", "bookworm", False), ("trixie+", "trixie", True), ("trixie+", "forky", True),
    ("trixie+", "sid", True), ("bookworm", "trixie", False), (["bookworm", "trixie"], "trixie", True),
    (Not("bookworm"), "bookworm", False), (Not("bookworm"), "trixie", True),
])
def test_release_axis(wanted: object, release: str, applies: bool) -> None:
    reason = applicability.not_applicable(Item(release=wanted), "qemu", spec(release=release))
    assert (reason is None) is applies, reason


def test_an_unknown_release_waits_for_the_guest() -> None:
    item = Item(release="trixie+")
    assert applicability.not_applicable(item, "qemu", spec(release=None)) is None
    assert applicability.pending_axes(item, "qemu", spec(release=None)) == {"release"}
    assert applicability.pending_axes(item, "qemu", spec()) == set()


def test_provider_firmware_and_image_type_axes() -> None:
    assert applicability.not_applicable(Item(provider=Not("ssh")), "ssh", spec()) == \
        "provider ssh in ['ssh']"
    assert applicability.not_applicable(Item(provider=Not("ssh")), "aws", spec()) is None
    assert applicability.not_applicable(Item(firmware="uefi"), "qemu", spec()) == \
        "firmware bios not in ['uefi']"
    assert "firmware unknown" in applicability.not_applicable(Item(firmware="uefi"), "ssh",
                                                              spec(firmware=None))
    assert "image_type unknown" in applicability.not_applicable(
        Item(image_type=list(ImageType)), "qemu", spec(image_type=None))


@pytest.mark.parametrize("kwargs", [{"release": "trixy"}, {"firmware": "efi"}, {"os": "linux"},
                                    {"release": "trixie++"}])
def test_a_typo_in_a_marker_fails_collection(kwargs: dict[str, str]) -> None:
    with pytest.raises(pytest.UsageError):
        applicability.not_applicable(Item(**kwargs), "qemu", spec())


def test_the_catalogue_spells_each_marker() -> None:
    assert applicability.describe("release", "trixie+") == "release=trixie+"
    assert applicability.describe("provider", Not("ssh")) == "provider≠ssh"
    assert applicability.describe("firmware", ["uefi"]) == "firmware=uefi"


@pytest.mark.parametrize(("name", "release"), [
    ("debian-13-genericcloud-amd64.qcow2", "trixie"), ("debian-12-ec2-arm64-20261101.raw", "bookworm"),
    ("debian-bookworm-test-amd64-good.qcow2", "bookworm"), ("debian-sid-nocloud-amd64.qcow2", "sid"),
    ("my-image.qcow2", None), ("debian-123-x.qcow2", None),
])
def test_release_from_the_image_name(name: str, release: str | None) -> None:
    assert release_from_image_name(name) == release


def test_release_from_os_release() -> None:
    assert release_from_os_release({"VERSION_CODENAME": "trixie", "VERSION_ID": "13"}) == "trixie"
    assert release_from_os_release({"VERSION_ID": "12"}) == "bookworm"
    assert release_from_os_release({"VERSION_CODENAME": "forky"}) == "forky"  # testing: no id
    assert release_from_os_release({"ID": "ubuntu", "VERSION_CODENAME": "noble"}) is None

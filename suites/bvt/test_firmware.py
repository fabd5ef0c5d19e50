"""UEFI boot: Linux runs on the firmware the platform started it with, and the EFI system
partition is mounted where boot loader updates are written."""

from __future__ import annotations

import pytest

from debian_cloud_tests.facts import Probe

PROBES = [
    Probe("efi_runtime", "[ -d /sys/firmware/efi ] && echo uefi || echo bios"),
    # list it first: an automounted ESP shows as autofs until something looks inside
    Probe("esp_mount", "ls /boot/efi >/dev/null 2>&1; findmnt -n -o FSTYPE -M /boot/efi; true",
          root=True),
]


@pytest.mark.applies(firmware="uefi")
def test_booted_in_uefi_mode(facts) -> None:
    """Under UEFI firmware Linux booted through EFI (/sys/firmware/efi), not a legacy path."""
    mode = facts["efi_runtime"].stdout.strip()
    assert mode == "uefi", (
        "the platform started UEFI firmware but Linux runs without EFI services "
        "(/sys/firmware/efi is missing): the image booted through a legacy (CSM) path; install "
        "grub-efi to the EFI system partition's removable path (EFI/BOOT/BOOT*.EFI)")


@pytest.mark.applies(firmware="uefi")
def test_esp_mounted(facts) -> None:
    """The EFI system partition is mounted at /boot/efi, so boot loader updates reach the firmware."""
    fstype = facts["esp_mount"].stdout.strip().splitlines()
    assert fstype and fstype[-1] == "vfat", (
        f"/boot/efi is {'a ' + fstype[-1] + ' mount' if fstype else 'not mounted'}: grub and shim "
        "updates would not reach the EFI system partition; mount it from /etc/fstab "
        "(UUID=… /boot/efi vfat umask=0077 0 1)")

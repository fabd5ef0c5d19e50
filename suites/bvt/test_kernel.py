"""The running kernel: the flavour the image type promises, booted by a stable root name, not
tainted, and no reboot already pending on a fresh instance."""

from __future__ import annotations

import re

import pytest

from debian_cloud_tests.facts import Probe
from debian_cloud_tests.probes import BTIME, CMDLINE
from debian_cloud_tests.spec import ImageType

#: image types whose Debian images run the cloud kernel (linux-image-cloud-*)
CLOUD_KERNEL_TYPES = {"genericcloud", "ec2", "gce", "azure"}
#: how a stable block device name starts: a disk's kernel name changes between platforms
#: (vda on virtio, xvda on Xen, nvme0n1 on Nitro), these do not
STABLE_ROOT = re.compile(r"^(UUID=|PARTUUID=|LABEL=|PARTLABEL=|/dev/disk/by-|/dev/mapper/)")
#: /proc/sys/kernel/tainted bits, as the kernel documents them
TAINT_FLAGS = {0: "proprietary module", 1: "module force-loaded", 4: "machine check", 5: "bad page",
               7: "kernel died recently (OOPS or BUG)", 9: "kernel warning", 12: "out-of-tree module",
               13: "unsigned module", 14: "soft lockup", 15: "live-patched", 17: "struct randomization"}

PROBES = [
    Probe("kernel_release", "uname -r"),
    CMDLINE,
    Probe("kernel_tainted", "cat /proc/sys/kernel/tainted"),
    # /run is new at every boot: the file was made during this one, by the image itself or by
    # an upgrade this boot ran (dpkg's status changed since the boot: see BTIME)
    Probe("reboot_required", "[ -e /run/reboot-required ] || exit 0; "
          "stat -c %Y /var/lib/dpkg/status; cat /run/reboot-required.pkgs 2>/dev/null; true"),
    BTIME,
]


@pytest.mark.applies(image_type=list(ImageType))  # an image of unknown type promises no flavour
def test_kernel_flavour(facts, dct_run) -> None:
    """The kernel flavour matches the image type: the cloud kernel on cloud images (smaller, faster
    to boot), the generic one where any hardware may be met."""
    image_type = dct_run.spec.image_type
    release = facts["kernel_release"].stdout.strip()
    cloud = "-cloud-" in release
    if image_type.value in CLOUD_KERNEL_TYPES:
        assert cloud, (f"{image_type} images run the cloud kernel, this one runs {release}; "
                       "install linux-image-cloud-*")
    else:
        assert not cloud, (f"{image_type} images run the generic kernel, this one runs {release}; "
                           "install linux-image-amd64/-arm64 (the cloud kernel lacks drivers for "
                           "hardware these images meet)")


def test_kernel_root_by_stable_name(facts) -> None:
    """The kernel finds its root by UUID or label, not by a disk name that differs per platform."""
    roots = re.findall(r"(?:^|\s)root=(\S+)", facts["cmdline"].stdout)
    assert roots, "no root= on the kernel command line"
    assert STABLE_ROOT.match(roots[-1]), (f"root={roots[-1]} names a disk by its kernel name; use "
                                          "root=UUID=… (GRUB_DISABLE_LINUX_UUID must not be set)")


def test_kernel_not_tainted(facts) -> None:
    """The kernel is not tainted: no warning, oops, lockup or foreign module since boot."""
    value = facts["kernel_tainted"].stdout.strip()
    assert value.isdigit(), f"cannot read /proc/sys/kernel/tainted: {facts['kernel_tainted'].why()}"
    bits = [b for b in range(32) if int(value) >> b & 1]
    assert not bits, (f"kernel tainted ({value}): "
                      f"{', '.join(TAINT_FLAGS.get(b, f'bit {b}') for b in bits)}; see dmesg")


def test_no_reboot_pending(facts) -> None:
    """A fresh instance does not already need a reboot (the image was built and not finished).
    One that asks for it after upgrading packages during this boot (unattended-upgrades, a
    cloud's package_upgrade) does so by design and passes."""
    lines = facts["reboot_required"].lines()
    booted = facts["btime"].stdout.strip()
    if lines and lines[0].isdigit() and booted.isdigit() and int(lines[0]) >= int(booted):
        return  # dpkg changed something this boot
    assert not lines, (f"/run/reboot-required exists on first boot (for {lines[1:] or 'unknown packages'}): "
                       "the image was upgraded after its kernel or libc was set up; reboot the "
                       "build (or rebuild from updated packages) before publishing")

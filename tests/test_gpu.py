"""The instance-type table and the gpu suite: the table's shipped promises, its merge and its
validation; the suite not applicable where no GPU is promised (before anything boots), and under
QEMU, with the table's device attached, passing (positive) or failing for a declaration the machine
does not honour (negative controls of both checks)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from debian_cloud_tests.providers.qemu.provider import _gpu_devices

from debian_cloud_tests import instancetypes
from debian_cloud_tests.errors import InstanceTypeTableError
from debian_cloud_tests.instancetypes import InstanceTypeEntry
from debian_cloud_tests.plugin import suites_dir
from debian_cloud_tests.spec import Arch, LaunchSpec

from .conftest import TEST_SHAPE, run_suites

#: the instance types Debian's clouds sell with GPUs, and how many each has
CLOUD_GPUS = {
    ("aws", "g4dn.xlarge"): 1, ("aws", "g5.xlarge"): 1, ("aws", "p3.2xlarge"): 1,
    ("aws", "p4d.24xlarge"): 8, ("aws", "g6.xlarge"): 1, ("gce", "a2-highgpu-1g"): 1,
    ("gce", "g2-standard-4"): 1, ("gce", "a3-highgpu-8g"): 8, ("azure", "Standard_NC6s_v3"): 1,
    ("azure", "Standard_NC4as_T4_v3"): 1, ("azure", "Standard_NC24ads_A100_v4"): 1,
}

# The test image's kernel (linux-image-cloud-amd64, bookworm and trixie) is built without DRM:
# bochs, virtio_gpu, cirrus, qxl and vmwgfx are absent, its only PCI display driver is hyperv_fb
# (a device QEMU cannot emulate).  The one display device it binds is virtio-gpu-pci, whose PCI
# function the virtio transport (virtio-pci) takes: the pair the positive proof declares.
# bochs-display with bochs, the pair a generic kernel binds, is the driver's negative control.
VIRTIO_GPU = 'qemu_device = "virtio-gpu-pci"\ngpu_vendor = "1af4"\ngpu_driver = "virtio-pci"\n'
BOCHS = 'qemu_device = "bochs-display"\ngpu_vendor = "1234"\ngpu_driver = "bochs"\n'


def _table(tmp_path: Path, body: str, name: str = "types.toml") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


def test_shipped_table_promises_each_clouds_gpus() -> None:
    table = instancetypes.load()
    for (provider, instance_type), gpus in CLOUD_GPUS.items():
        entry = table.lookup(provider, instance_type)
        assert entry is not None, (provider, instance_type)
        assert (entry.gpus, entry.gpu_vendor, entry.gpu_driver) == (gpus, "10de", "nvidia")
        assert entry.qemu_device is None
    floors = [e.throughput_floor_mbps for e in table.entries.values() if e.throughput_floor_mbps]
    assert len(floors) >= 4 and all(f > 0 for f in floors)
    assert table.lookup("aws", "t3.micro") is None


def test_later_files_replace_an_entry_whole(tmp_path: Path) -> None:
    first = _table(tmp_path, '[aws."g4dn.xlarge"]\ngpus = 2\n[qemu."2x1024"]\ngpus = 1\n', "a.toml")
    second = _table(tmp_path, '[aws."g4dn.xlarge"]\ngpus = 4\ngpu_driver = "nouveau"\n', "b.toml")
    table = instancetypes.load([first, second])
    assert table.lookup("aws", "g4dn.xlarge") == InstanceTypeEntry(gpus=4, gpu_driver="nouveau")
    assert table.source("aws", "g4dn.xlarge") == str(second)
    assert table.lookup("qemu", "2x1024") == InstanceTypeEntry(gpus=1)
    assert table.lookup("aws", "g5.xlarge") is not None  # the shipped entries stay
    assert table.source("aws", "g5.xlarge") == str(instancetypes.SHIPPED)


@pytest.mark.parametrize(("body", "message"), [
    ('[qemu."2x1024"]\ngpus = -1\n', 't.toml:2: [qemu."2x1024"] gpus = -1: give a whole number of GPUs'),
    ('[qemu."2x1024"]\ngpus = 1.5\n', 't.toml:2: [qemu."2x1024"] gpus = 1.5: give a whole number'),
    ('[qemu."2x1024"]\ngpus = true\n', 't.toml:2: [qemu."2x1024"] gpus = true: give a whole number'),
    ('[qemu."2x1024"]\ngpus = "1"\n', 't.toml:2: [qemu."2x1024"] gpus = "1": give a whole number'),
    ('\n[aws."g4dn.xlarge"]\ngpus = 1\ncolour = "red"\n',
     't.toml:4: [aws."g4dn.xlarge"] colour = "red": unknown key \'colour\'; valid keys: gpus, '),
    ('[qemu."2x1024"]\nthroughput_floor_mbps = 0\n',
     't.toml:2: [qemu."2x1024"] throughput_floor_mbps = 0: give a positive number of Mbit/s'),
    ('[qemu."2x1024"]\nthroughput_floor_mbps = "fast"\n', 'throughput_floor_mbps = "fast": give a positive'),
    ('[qemu."2x1024"]\nthroughput_floor_mbps = nan\n', 'throughput_floor_mbps = nan: give a positive'),
    ('[qemu."2x1024"]\ngpu_driver = 3\n', 't.toml:2: [qemu."2x1024"] gpu_driver = 3: give a name in quotes'),
    ('[qemu."2x1024"]\nqemu_device = ["a"]\n', 'qemu_device = an array: give a name in quotes'),
    ('[qemu."2x1024"]\ngpu_vendor = "nvidia"\n', 'gpu_vendor = "nvidia": give the PCI vendor id as four hex'),
    ('[qemu]\n"2x1024" = 4\n', 't.toml:2: [qemu."2x1024"] is 4: an instance type is a table of gpus'),
    ('qemu = 1\n', "t.toml:1: [qemu] is 1: a provider's section holds one table per instance type"),
    ('[qemu."2x1024"\ngpus = 1\n', "t.toml:1: invalid TOML: Expected ']' at the end of a table"),
    ('[qemu."2x1024"]\ngpus = 1\n[qemu."2x1024"]\ngpus = 2\n', "t.toml:3: invalid TOML: "),
])
def test_a_malformed_entry_names_its_file_line_and_entry(body: str, message: str) -> None:
    with pytest.raises(InstanceTypeTableError) as caught:
        instancetypes.parse(body, "t.toml")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value) and caught.value.exit_code == 37


def test_a_dotted_or_inline_entry_is_read_alike() -> None:
    table = instancetypes.parse('qemu."1x512".gpus = 2\n[aws]\n"g5.xlarge" = { gpus = 1 }\n', "t")
    assert table == {("qemu", "1x512"): InstanceTypeEntry(gpus=2),
                     ("aws", "g5.xlarge"): InstanceTypeEntry(gpus=1)}
    with pytest.raises(InstanceTypeTableError, match=r'^t:3: \[aws."g5.xlarge"\] gpus = -2'):
        instancetypes.parse('qemu."1x512".gpus = 2\n[aws]\n"g5.xlarge" = { gpus = -2 }\n', "t")


def test_qemu_attaches_the_device_once_per_promised_gpu(tmp_path: Path) -> None:
    table = instancetypes.load([_table(tmp_path, f'[qemu."2x1024"]\ngpus = 2\n{VIRTIO_GPU}'
                                                 '[qemu."1x1024"]\ngpus = 1\n')])
    spec = LaunchSpec(image="x", arch=Arch.AMD64, instance_types=table)
    assert _gpu_devices(spec, "2x1024") == ("virtio-gpu-pci", "virtio-gpu-pci")
    assert _gpu_devices(spec, "1x1024") == ()  # promised, with no device to show it
    assert _gpu_devices(spec, "4x4096") == ()


def test_no_gpu_promised_is_not_applicable_before_anything_boots(tmp_path: Path) -> None:
    """Without a promise the checks skip saying why, and no machine is started for them (the
    image given never boots: the run would wait for it)."""
    disk = tmp_path / "disk.raw"
    with disk.open("wb") as fh:  # a partition table's signature, no boot loader
        fh.truncate(1024 * 1024)
        fh.seek(510)
        fh.write(b"\x55\xaa")
    started = time.monotonic()
    run = run_suites(tmp_path, "--provider=qemu", f"--image={disk}", "--image-type=genericcloud",
                     "-k", "not console_clean_at_end", select=str(suites_dir() / "gpu"), timeout=120)
    assert run.checks == {"gpu.devices_present": "skipped", "gpu.driver_bound": "skipped"}, run.explain()
    assert run.messages["gpu.devices_present"] == (
        f"not applicable: the instance-type table promises no GPU for {TEST_SHAPE} on qemu (add one "
        "with --instance-types)")
    assert time.monotonic() - started < 60


def _gpu_run(tmp_path: Path, image: Path, entry: str):
    """The gpu suite alone on *image*, the table promising *entry* for the tests' shape."""
    table = _table(tmp_path, f'[qemu."{TEST_SHAPE}"]\n{entry}')
    started = time.monotonic()
    run = run_suites(tmp_path, "--provider=qemu", f"--image={image}", f"--instance-type={TEST_SHAPE}",
                     f"--instance-types={table}",
                     select=str(suites_dir() / "gpu"), timeout=600)
    print(f"gpu run: {time.monotonic() - started:.0f}s")
    return run


@pytest.mark.e2e
@pytest.mark.cost(60)
def test_declared_display_device_passes(good_image: Path, tmp_path: Path) -> None:
    """A GPU the table declares is attached by QEMU, found and bound to its driver."""
    run = _gpu_run(tmp_path, good_image, f"gpus = 1\n{VIRTIO_GPU}")
    assert run.rc == 0, run.explain()
    assert run.checks["gpu.devices_present"] == "passed", run.digest()
    assert run.checks["gpu.driver_bound"] == "passed", run.digest()


@pytest.mark.matrix  # in CI: test_e2e_qemu's no-serial-console variant runs on this promise
@pytest.mark.e2e
@pytest.mark.cost(70)
def test_declared_gpu_without_a_device_fails(good_image: Path, tmp_path: Path) -> None:
    """A promise the machine does not honour (no device attached) fails, saying what was found."""
    run = _gpu_run(tmp_path, good_image, 'gpus = 1\ngpu_vendor = "1af4"\ngpu_driver = "virtio-pci"\n')
    assert run.rc == 1, run.explain()
    assert run.failing() == {"gpu.devices_present", "gpu.driver_bound"}, run.digest()
    assert run.messages["gpu.devices_present"].startswith(
        "AssertionError: found 0 of 1 GPU(s) of PCI vendor 1af4, which 1x1024 on qemu promises ("), \
        run.messages["gpu.devices_present"]
    assert "only 0 found (see gpu.devices_present)" in run.messages["gpu.driver_bound"]


@pytest.mark.matrix  # a third boot: beyond CI's budget
@pytest.mark.e2e
@pytest.mark.cost(75)
def test_a_display_the_kernel_cannot_drive_fails_driver_bound(good_image: Path, tmp_path: Path) -> None:
    """Devices there, of the promised vendor, but bound to no driver: the driver check fails alone,
    naming each device (bochs, the DRM driver of bochs-display, is not in the cloud kernel)."""
    run = _gpu_run(tmp_path, good_image, f"gpus = 2\n{BOCHS}")
    assert run.rc == 1, run.explain()
    assert run.checks["gpu.devices_present"] == "passed", run.digest()
    assert run.failing() == {"gpu.driver_bound"}, run.digest()
    message = run.messages["gpu.driver_bound"]
    assert "0 of 2 GPU(s) of PCI vendor 1234" in message and "bound to bochs: " in message, message
    assert message.count("(1234:1111, class 0x038000) bound to no driver") == 2, message

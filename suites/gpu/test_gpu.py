"""GPUs the instance type promises (the instance-type table, `--instance-types`): as many PCI
display devices of the promised vendor as promised, each bound to the promised kernel driver.
Not applicable where the table promises no GPU for the run's provider and instance type; decided
before anything boots."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from debian_cloud_tests.facts import Probe
from debian_cloud_tests.instancetypes import InstanceTypeEntry, Table

# Every PCI device of the display class (0x03: VGA, XGA, 3D controller, other): its address,
# class, vendor, device and bound driver ("-": none).  Shell builtins only, unless one is found.
PROBES = [
    Probe("pci_display", 'for d in /sys/bus/pci/devices/*; do [ -r "$d/class" ] || continue; '
          'read c <"$d/class"; case $c in 0x03*) read v <"$d/vendor"; read p <"$d/device"; '
          'k=-; [ -e "$d/driver" ] && k=$(readlink "$d/driver"); '
          'echo "${d##*/} $c ${v#0x} ${p#0x} ${k##*/}";; esac; done'),
]


@dataclass(frozen=True)
class Promise:
    """What the run's instance type promises, and where the promise is written."""

    provider: str
    instance_type: str
    entry: InstanceTypeEntry
    source: str

    @property
    def what(self) -> str:
        vendor = f" of PCI vendor {self.entry.gpu_vendor}" if self.entry.gpu_vendor else ""
        return f"{self.entry.gpus} GPU(s){vendor}, which {self.instance_type} on {self.provider} " \
               f"promises ({self.source})"


@dataclass(frozen=True)
class Device:
    """One PCI display device as the guest's sysfs describes it."""

    address: str
    pci_class: str
    vendor: str
    device: str
    driver: str | None

    def __str__(self) -> str:
        return f"{self.address} ({self.vendor}:{self.device}, class {self.pci_class})"


@pytest.fixture(scope="session")  # the session's, so it is set up (or skips) before `facts` boots
def promise(request: pytest.FixtureRequest, instance_types: Table,
            instance_type_entry: InstanceTypeEntry | None, dct_run) -> Promise:
    """The run's GPU promise; a skip, before anything boots, where there is none."""
    provider, instance_type = dct_run.provider.name, dct_run.spec.instance_type or "(none)"
    if instance_type_entry is None or instance_type_entry.gpus == 0:
        pytest.skip(f"not applicable: the instance-type table promises no GPU for {instance_type} "
                    f"on {provider} (add one with --instance-types)")
    return Promise(provider, instance_type, instance_type_entry,
                   instance_types.source(provider, instance_type) or "the instance-type table")


def _displays(facts) -> list[Device]:
    out = facts["pci_display"]
    devices = []
    for line in out.lines():
        address, pci_class, vendor, device, driver = line.split()
        devices.append(Device(address, pci_class, vendor.lower(), device.lower(),
                              None if driver == "-" else driver))
    return devices


def _gpus(devices: list[Device], entry: InstanceTypeEntry) -> list[Device]:
    """The display devices that count as the promised GPUs: those of its vendor, if it names one."""
    return [d for d in devices if entry.gpu_vendor in (None, d.vendor)]


def test_devices_present(promise: Promise, facts) -> None:
    """The instance type's GPUs are on the PCI bus, as many as it promises, of the promised vendor."""
    devices = _displays(facts)
    gpus = _gpus(devices, promise.entry)
    others = [str(d) for d in devices if d not in gpus]
    assert len(gpus) == promise.entry.gpus, (
        f"found {len(gpus)} of {promise.what}: "
        + (", ".join(map(str, gpus)) or "no such PCI display device")
        + (f" (other display devices: {', '.join(others)})" if others else "")
        + "; the platform did not attach what the instance type promises, or the table promises "
        "what the type does not have: fix the entry")


def test_driver_bound(promise: Promise, facts) -> None:
    """Every promised GPU is bound to the driver the instance type names, so the image can use it."""
    gpus = _gpus(_displays(facts), promise.entry)
    wanted = promise.entry.gpu_driver
    bound = [d for d in gpus if d.driver is not None and wanted in (None, d.driver)]
    unbound = [f"{d} bound to {d.driver or 'no driver'}" for d in gpus if d not in bound]
    if unbound:
        pytest.fail(f"{len(bound)} of {promise.what} bound to {wanted or 'a driver'}: "
                    f"{'; '.join(unbound)}; the image does not bind {wanted or 'a driver'} to its "
                    "GPUs: install the driver (its kernel module) in the image, or name the driver "
                    "the image provides in the table", pytrace=False)
    assert len(bound) >= promise.entry.gpus, (
        f"{len(bound)} of {promise.what} bound to {wanted or 'a driver'}: only {len(gpus)} found "
        "(see gpu.devices_present)")

"""The vagrant provider: ``--provider=vagrant --image=BOX`` boots a Vagrant box on libvirt.

``--image`` is a box already added to Vagrant (``debian/bookworm64``) or a ``.box`` file, added
for the run only.  The Vagrantfile is generated in the run dir; the machine gets the framework's
NoCloud seed as a cdrom (key, instance id, hostname, launch marker), its serial console goes to
a file, and its CPUs, memory and acceleration are chosen as for QEMU.
"""

from __future__ import annotations

import re
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from debian_cloud_tests import rundir, seed
from debian_cloud_tests.errors import (
    ArchFirmwareError,
    ImageNotFoundError,
    UsageError,
    note_cleanup_failures,
)
from debian_cloud_tests.machine import Machine, PlatformFacts
from debian_cloud_tests.paths import cache_dir
from debian_cloud_tests.provider import Provider
from debian_cloud_tests.spec import Arch, Firmware, LaunchSpec, ProviderSettings

from ..qemu import accel as accel_mod
from ..qemu.provider import parse_instance_type
from . import box, pool, tools
from .machine import VagrantMachine
from .project import Project
from .vagrantfile import MachineConfig, render

DEFAULT_INSTANCE_TYPE = "2x1024"
GIB = 1024**3


def parse_disk_size(value: str | None) -> int | None:
    """Whole GiB, absolute ('8G'): what vagrant-libvirt's machine_virtual_size takes."""
    if value is None:
        return None
    m = re.fullmatch(r"(\d+)G", value.strip(), re.I)
    if not m or int(m.group(1)) < 1:
        raise UsageError(f"--disk-size {value!r}: for vagrant give whole GiB, e.g. 8G")
    return int(m.group(1))


@dataclass(frozen=True)
class VagrantSettings(ProviderSettings):
    source: box.BoxSource
    vcpus: int
    memory_mib: int
    disk_gib: int | None  # None: the box's size


class VagrantProvider(Provider):
    name = "vagrant"
    secure_boot_refused = "vagrant-libvirt boots its boxes with BIOS firmware here"

    def __init__(self) -> None:
        self._versions: dict[str, str] = {}

    def preflight(self, options: Mapping[str, str] | None = None) -> str:
        """vagrant, its libvirt plugin and libvirtd, checked as validate() does; no box is read."""
        tools.require_programs()
        with tempfile.TemporaryDirectory(prefix="dct-vagrant-") as tmp:
            plugin = Project(Path(tmp), None).libvirt_plugin_version()
        return f"vagrant-libvirt {plugin}; libvirt {tools.check_libvirt()} at {tools.LIBVIRT_URI}"

    def validate(self, spec: LaunchSpec) -> LaunchSpec:
        if spec.arch is not Arch.host():
            raise ArchFirmwareError(f"vagrant: an {spec.arch.value} box cannot run on this "
                                    f"{Arch.host().value} host (libvirt runs the host's arch)")
        if spec.firmware not in (None, Firmware.BIOS):
            raise ArchFirmwareError("vagrant: only BIOS boxes are supported (no UEFI loader is set)")
        instance_type = spec.instance_type or DEFAULT_INSTANCE_TYPE
        vcpus, mem = parse_instance_type(instance_type, "vagrant")
        disk_gib = parse_disk_size(spec.disk_size)
        source = box.resolve(spec.image)
        tools.require_programs()
        with tempfile.TemporaryDirectory(prefix="dct-vagrant-") as tmp:
            # Only a named box needs the user's VAGRANT_HOME; a file run touches none of it.
            project = Project(Path(tmp), None if source.name is not None else Path(tmp) / "home")
            self._versions["vagrant_libvirt_version"] = project.libvirt_plugin_version()
            self._versions["libvirt_version"] = tools.check_libvirt()
            self._versions["vagrant_version"] = project.version()
            if source.name is not None and source.name not in project.box_names():
                raise ImageNotFoundError(
                    f"vagrant: no box named {source.name!r} for libvirt (see `vagrant box list`); "
                    "add it with `vagrant box add`, or give a .box file")
        settings = VagrantSettings(source=source, vcpus=vcpus, memory_mib=mem, disk_gib=disk_gib)
        return replace(spec, firmware=Firmware.BIOS, instance_type=instance_type, settings=settings)

    def properties(self) -> dict[str, str]:
        return dict(self._versions)

    def launch(self, spec: LaunchSpec, run_dir: Path) -> Machine:
        settings = spec.settings_as(VagrantSettings)
        source, vcpus, mem, disk_gib = settings.source, settings.vcpus, settings.memory_mib, settings.disk_gib
        chosen, why = accel_mod.choose(spec.accel, spec.arch, "qemu-system-x86_64", cache_dir())

        short = uuid.uuid4().hex[:8]
        run_id = spec.run_id or rundir.new_run_id()  # the record's run id must be one gc accepts
        instance_id = f"i-dct-{run_id}-{short}"
        hostname = f"dct-{short}"
        key_file, injected, seed_iso = seed.write_nocloud_seed(spec, run_dir, instance_id, hostname)
        name = f"dct-{run_id}-{short}"
        # before the first volume: a killed run's guard stops its `vagrant up` and removes what
        # libvirt holds of it (the domain, its disk, the seed and box volumes)
        rundir.record_cloud(run_dir, "vagrant", project=str(run_dir), run_id=run_id)
        pool.ensure_pool()
        seed_volume = f"{name}-seed.iso"
        run_box = name if source.path is not None else None
        try:  # a stop during the seed's upload leaves a volume too
            seed_path = pool.upload(seed_volume, seed_iso)
            project = _project(run_dir, source, run_box)
            box_name = run_box or str(source.name)
            console_path = run_dir / "console.log"
            (run_dir / "Vagrantfile").write_text(render(MachineConfig(
                box=box_name, ssh_user=spec.ssh_user, key_file=key_file, seed_iso=Path(seed_path),
                console_log=console_path, driver="kvm" if chosen.value == "kvm" else "qemu",
                vcpus=vcpus, memory_mib=mem, domain_prefix=f"{name}-",
                boot_timeout=int(spec.boot_timeout), disk_gib=disk_gib)))
            gib = disk_gib or source.virtual_gib
            facts = PlatformFacts(
                provider="vagrant", instance_id=instance_id, hostname=hostname, arch=spec.arch,
                firmware=Firmware.BIOS, datasource="NoCloud", instance_type=f"{vcpus}x{mem}",
                disk_size=gib * GIB if gib else None,
                # vagrant-libvirt's management network is IPv4 only
                extra={"vcpus": str(vcpus), "memory_mib": str(mem), "ipv6": "no"})
            machine = VagrantMachine(project, facts, spec.ssh_user, key_file, console_path, injected,
                                     {"accel": chosen.value, "accel_reason": why, "box": box_name,
                                      "firmware": Firmware.BIOS.value},
                                     run_box, seed_volume)
            machine.start()
        except BaseException as exc:
            failures = pool.remove(seed_volume)
            if run_box:
                failures += pool.remove(box.volume_prefix(run_box))
            note_cleanup_failures(exc, failures)
            raise
        return machine


def _project(run_dir: Path, source: box.BoxSource, run_box: str | None) -> Project:
    """The run dir as a Vagrant project; a box file is added to a VAGRANT_HOME of the run's own,
    never to ~/.vagrant.d."""
    if run_box is None:
        return Project(run_dir, None)
    assert source.path is not None
    project = Project(run_dir, run_dir / "vagrant.d")
    project.box_add(run_box, source.path)
    return project

"""The QEMU provider: overlay on the candidate image, NoCloud seed, one QEMU process per machine."""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path

from debian_cloud_tests import rundir, seed
from debian_cloud_tests.errors import MissingDependencyError, UsageError
from debian_cloud_tests.machine import Machine, PlatformFacts
from debian_cloud_tests.options import Option
from debian_cloud_tests.paths import cache_dir
from debian_cloud_tests.provider import Provider
from debian_cloud_tests.spec import Arch, Firmware, LaunchSpec

from . import accel as accel_mod
from . import firmware as fw
from . import image as image_mod
from . import netwall
from .machine import QemuMachine

DEFAULT_INSTANCE_TYPE = "2x1024"
_SIZE = re.compile(r"^(\+)?(\d+)([KMGT])?$", re.I)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
GROWTH = 1024**3


def parse_instance_type(value: str, provider: str = "qemu") -> tuple[int, int]:
    """'<vcpus>x<MiB>', e.g. '2x1024': QEMU has no instance types, so say the shape directly."""
    m = re.fullmatch(r"(\d+)x(\d+)", value)
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 256:
        raise UsageError(f"--instance-type {value!r}: for {provider} write VCPUSxMEMORY_MIB, "
                         "e.g. 2x1024")
    return int(m.group(1)), int(m.group(2))


def parse_disk_size(value: str | None, virtual: int) -> int:
    """Absolute ('8G') or relative ('+1G') size; never smaller than the image."""
    if value is None:
        return virtual + GROWTH
    m = _SIZE.match(value.strip())
    if not m:
        raise UsageError(f"--disk-size {value!r}: write e.g. 8G or +1G")
    size = int(m.group(2)) * _UNITS[(m.group(3) or "").upper()]
    size = virtual + size if m.group(1) else size
    if size < virtual:
        raise UsageError(f"--disk-size {value}: smaller than the image ({virtual} bytes)")
    return size


def parse_port_range(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    m = re.fullmatch(r"(\d+)-(\d+)", value)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)) <= 65535:
        raise UsageError(f"qemu port range {value!r}: write LOW-HIGH, e.g. 40000-40100")
    return int(m.group(1)), int(m.group(2))


class QemuProvider(Provider):
    name = "qemu"
    options = (
        Option("qemu-port-range", "local ports to forward SSH from, LOW-HIGH (default: any)",
               key="port_range"),
        Option("qemu-network", "the guest's network: user (the internet through this host, walled "
               "off this host's loopback and link-local addresses), open (this host's loopback too, "
               "e.g. a local apt proxy) or isolated (nothing but the forwarded SSH port, for "
               "sandboxed CI)", default="user", choices=("user", "open", "isolated")),
    )

    def validate(self, spec: LaunchSpec) -> LaunchSpec:
        info = image_mod.inspect(Path(spec.image))
        firmware = spec.firmware or fw.default_firmware(spec.arch)
        fw.check(spec.arch, firmware)
        parse_instance_type(spec.instance_type or DEFAULT_INSTANCE_TYPE)
        parse_disk_size(spec.disk_size, info.virtual_size)
        parse_port_range(spec.options.get("port_range"))
        options = dict(spec.options)
        if options.get("qemu_network") == "isolated" and "restrict=on" not in options.get("user_net", ""):
            options["user_net"] = ",".join(filter(None, (options.get("user_net"), "restrict=on")))
        if _walled(options):
            netwall.check_tools()  # before anything is made, not at the launch
        return replace(spec, firmware=firmware, instance_type=spec.instance_type or DEFAULT_INSTANCE_TYPE,
                       options=options)

    def preflight(self, options: Mapping[str, str] | None = None) -> str:
        """The QEMU binaries and firmware per arch, and the accelerator (no KVM probe is run)."""
        if not shutil.which("qemu-img"):
            raise MissingDependencyError("qemu-img not found: apt-get install qemu-utils")
        arches = {arch: fw.available(arch) for arch in (Arch.AMD64, Arch.ARM64)}
        if not any(found for found, _ in arches.values()):
            platform = fw.PLATFORMS[Arch.host()]
            raise MissingDependencyError(f"{platform.binary} not found: apt-get install "
                                         f"{platform.package} qemu-utils")
        parts = [_arch_line(arch, found, fix) for arch, (found, fix) in arches.items()]
        return f"{', '.join(parts)}; {accel_mod.cached(Arch.host(), cache_dir())}"

    def launch(self, spec: LaunchSpec, run_dir: Path) -> Machine:
        assert spec.firmware is not None
        info = image_mod.inspect(Path(spec.image))
        vcpus, mem = parse_instance_type(spec.instance_type or DEFAULT_INSTANCE_TYPE)
        disk_size = parse_disk_size(spec.disk_size, info.virtual_size)
        platform = fw.check(spec.arch, spec.firmware)
        chosen, why = accel_mod.choose(spec.accel, spec.arch, platform.binary, cache_dir())

        short = uuid.uuid4().hex[:8]
        instance_id = f"i-dct-{spec.run_id or short}-{short}"
        hostname = f"dct-{short}"
        key_file, injected, seed_iso = seed.write_nocloud_seed(spec, run_dir, instance_id, hostname)
        # seed=none: the guest gets its configuration elsewhere (an emulated metadata service).
        seed_drive = [] if spec.options.get("seed") == "none" else [
            "-drive", f"file={seed_iso},if=virtio,format=raw,readonly=on"]
        user_net = spec.options.get("user_net", "")
        # smbios: one or more -smbios values separated by ";" (e.g. a system and a chassis entry)
        smbios = [arg for value in spec.options.get("smbios", "").split(";") if value
                  for arg in ("-smbios", value)]
        # extra_disk=PATH: a raw disk after the others (not first: BIOS boots the first disk),
        # e.g. where a build VM writes the image it built
        extra = spec.options.get("extra_disk", "").replace(",", ",,")  # QEMU's comma escape
        extra_disk = ["-drive", f"file={extra},if=virtio,format=raw"] if extra else []
        # cdrom=PATH: an ISO on a SCSI CD-ROM (/dev/sr0), as a cloud attaches provisioning media
        cdrom = spec.options.get("cdrom", "").replace(",", ",,")
        cd_drive = ["-device", "virtio-scsi-pci,id=cdscsi",
                    "-drive", f"file={cdrom},if=none,id=cd0,media=cdrom,format=raw,readonly=on",
                    "-device", "scsi-cd,drive=cd0,bus=cdscsi.0"] if cdrom else []

        overlay = run_dir / "disk.qcow2"
        proc = subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", info.fmt, "-b",
                               str(info.path.resolve()), str(overlay), str(disk_size)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise UsageError(f"cannot create an overlay on {info.path}: {proc.stderr.strip()}")

        args = [platform.binary, "-name", f"dct-{spec.run_id}", "-nodefaults", "-no-user-config",
                "-display", "none", *fw.qemu_args(spec.arch, spec.firmware, chosen, run_dir),
                "-smp", str(vcpus), "-m", str(mem),
                "-chardev", f"file,id=console,path={run_dir / 'console.log'},append=on",
                "-serial", "chardev:console",
                "-qmp", "unix:qmp.sock,server=on,wait=off",  # relative: QEMU runs in run_dir
                "-drive", f"file={overlay},if=virtio,format=qcow2,discard=unmap",
                *seed_drive, *extra_disk, *cd_drive, *smbios,
                "-device", "virtio-rng-pci"]
        facts = PlatformFacts(provider="qemu", instance_id=instance_id, hostname=hostname,
                              arch=spec.arch, firmware=spec.firmware, datasource="NoCloud",
                              instance_type=f"{vcpus}x{mem}", disk_size=disk_size,
                              extra={"vcpus": str(vcpus), "memory_mib": str(mem),
                                     # user-mode networking offers SLAAC unless turned off
                                     "ipv6": "no" if "ipv6=off" in user_net else "yes",
                                     # restricted: DHCP hands out no router and no DNS
                                     "default_route": "no" if "restrict=on" in user_net else "yes"})
        machine = QemuMachine(run_dir, facts, spec.ssh_user, key_file, injected, {
            "accel": chosen.value, "accel_reason": why, "qemu_version": qemu_version(platform.binary),
            "firmware": spec.firmware.value, "image_format": info.fmt, "disk_size": str(disk_size),
        })
        # ssh_listen=ADDR:PORT forwards SSH from that address and port only (an emulated cloud's
        # public address); user_net and mac add to the user network and NIC.
        listen_host, _, listen_port = spec.options.get("ssh_listen", "127.0.0.1:").rpartition(":")
        port_range = ((int(listen_port), int(listen_port)) if listen_port
                      else parse_port_range(spec.options.get("port_range")))
        machine.start(args, port_range, register_pid=partial(rundir.register_pid, run_dir),
                      die_with_parent=spec.options.get("die_with_parent", "yes") != "no",
                      listen_host=listen_host, net_extra=user_net,
                      mac=spec.options.get("mac"), wall=_walled(spec.options))
        return machine



def _walled(options: Mapping[str, str]) -> bool:
    """user (the default): the internet but not this host; open: this host too (an emulated
    cloud's metadata relay, a trusted builder); isolated (restrict=on): SSH alone."""
    return options.get("qemu_network", "user") == "user" and "restrict=on" not in options.get("user_net", "")


def _arch_line(arch: Arch, found: list[Firmware], fix: str) -> str:
    """'amd64 bios+uefi', 'amd64 bios (uefi: apt-get install ovmf)', 'arm64 none (apt-get …)'."""
    have = "+".join(f.value for f in found) or "none"
    if not fix:
        return f"{arch.value} {have}"
    return f"{arch.value} {have} ({'uefi: ' if found else ''}{fix})"


def qemu_version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    m = re.search(r"version (\S+)", out)
    return m.group(1) if m else "unknown"

"""The QEMU provider: overlay on the candidate image, NoCloud seed or an emulated cloud's
datasource, one QEMU process per machine."""

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
from debian_cloud_tests.datasources import emulation, platforms
from debian_cloud_tests.datasources.platforms import Datasource
from debian_cloud_tests.errors import MissingDependencyError, UsageError
from debian_cloud_tests.machine import Machine, PlatformFacts
from debian_cloud_tests.options import DATASOURCE, Option
from debian_cloud_tests.paths import cache_dir
from debian_cloud_tests.provider import Provider
from debian_cloud_tests.spec import Arch, Firmware, LaunchSpec
from debian_cloud_tests.upgrade import serve as repository

from . import accel as accel_mod
from . import firmware as fw
from . import image as image_mod
from . import netwall, peerlink
from .machine import QemuMachine
from .settings import Network, QemuHooks, QemuSettings

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
    secure_boot_refused = None  # OVMF/AAVMF with Microsoft's keys enrolled (firmware.py)
    serves_local_repository = True
    peer_link_refused = None
    options = (
        Option("qemu-port-range", "local ports to forward SSH from, LOW-HIGH (default: any)",
               key="port_range"),
        Option("qemu-network", "the guest's network: user (the internet through this host, walled "
               "off this host's loopback and link-local addresses), open (this host's loopback too, "
               "e.g. a local apt proxy) or isolated (nothing but the forwarded SSH port, for "
               "sandboxed CI)", default=Network.USER.value, choices=tuple(n.value for n in Network)),
        DATASOURCE,
    )

    def validate(self, spec: LaunchSpec) -> LaunchSpec:
        if spec.hooks is not None and not isinstance(spec.hooks, QemuHooks):
            raise TypeError(f"qemu takes QemuHooks, not {type(spec.hooks).__name__}")
        info = image_mod.inspect(Path(spec.image))
        firmware = spec.firmware or fw.default_firmware(spec.arch)
        datasource = platforms.resolve(spec.options.get("datasource"),
                                       "datasource" in spec.command_line, spec.image_type)
        platforms.check_platform(datasource, spec.arch, firmware)  # naming the cloud, first
        fw.check(spec.arch, firmware, spec.secure_boot)
        if datasource is Datasource.NOCLOUD:
            instance_type = spec.instance_type or DEFAULT_INSTANCE_TYPE
            vcpus, mem = parse_instance_type(instance_type)
        else:
            if spec.hooks is not None:
                raise UsageError(f"--datasource={datasource}: this machine's platform is emulated "
                                 "by the code that launches it already")
            instance_type, vcpus, mem = platforms.instance_type(
                datasource, spec.arch, spec.instance_type,
                parse_instance_type(DEFAULT_INSTANCE_TYPE))
        settings = QemuSettings(
            image=info, vcpus=vcpus, memory_mib=mem,
            disk_size=parse_disk_size(spec.disk_size, info.virtual_size),
            port_range=parse_port_range(spec.options.get("port_range")),
            network=_network(spec.options.get("qemu_network")),
            hooks=spec.hooks or QemuHooks(), datasource=datasource, instance_type_name=instance_type,
            gpu_devices=_gpu_devices(spec, instance_type))
        if settings.datasource is Datasource.GCE and not settings.walled:
            raise UsageError(f"--datasource=gce with --qemu-network={settings.network}: the guest "
                             "finds its metadata server by name (metadata.google.internal), which "
                             "only a walled network's resolver answers: use --qemu-network=user "
                             "or isolated")
        if settings.walled:
            netwall.check_tools()  # before anything is made, not at the launch
        return replace(spec, firmware=firmware, instance_type=instance_type, settings=settings)

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
        settings = spec.settings_as(QemuSettings)
        hooks, info = settings.hooks, settings.image
        platform = fw.check(spec.arch, spec.firmware, spec.secure_boot)
        chosen, why = accel_mod.choose(spec.accel, spec.arch, platform.binary, cache_dir())

        short = uuid.uuid4().hex[:8]
        instance_id = f"i-dct-{spec.run_id or short}-{short}"
        hostname = f"dct-{short}"
        emulated: emulation.Emulation | None = None
        if settings.datasource is Datasource.NOCLOUD:
            key_file, injected, media = seed.write_nocloud_seed(spec, run_dir, instance_id, hostname)
            seed_iso: Path | None = media if hooks.seed else None
        else:
            emulated, boot = _emulate(spec, settings, run_dir, hostname)
            instance_id, hostname = emulated.instance_id, emulated.hostname
            key_file, injected, seed_iso = boot.key_file, boot.injected, emulated.drive
            hooks = replace(hooks, smbios=emulated.smbios, mac=emulated.mac,
                            user_net=emulated.user_net, cdrom=emulated.cdrom)
        seed_drive = (["-drive", f"file={_escaped(seed_iso)},if=virtio,format=raw,readonly=on"]
                      if seed_iso else [])
        smbios = [arg for value in hooks.smbios for arg in ("-smbios", value)]
        extra_disk = (["-drive", f"file={_escaped(hooks.extra_disk)},if=virtio,format=raw"]
                      if hooks.extra_disk else [])
        cd_drive = ["-device", "virtio-scsi-pci,id=cdscsi",
                    "-drive", f"file={_escaped(hooks.cdrom)},if=none,id=cd0,media=cdrom,format=raw,"
                    "readonly=on", "-device", "scsi-cd,drive=cd0,bus=cdscsi.0"] if hooks.cdrom else []

        overlay = run_dir / "disk.qcow2"
        proc = subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", info.fmt, "-b",
                               str(info.path.resolve()), str(overlay), str(settings.disk_size)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise UsageError(f"cannot create an overlay on {info.path}: {proc.stderr.strip()}")

        vcpus, mem = settings.vcpus, settings.memory_mib
        repo_url, user_net = _served_repository(spec, replace(settings, hooks=hooks).user_net)
        args = [platform.binary, "-name", f"dct-{spec.run_id}", "-nodefaults", "-no-user-config",
                "-display", "none", *fw.qemu_args(spec.arch, spec.firmware, chosen, run_dir,
                                                   spec.secure_boot),
                "-smp", str(vcpus), "-m", str(mem),
                "-chardev", f"file,id=console,path={run_dir / 'console.log'},append=on",
                "-serial", "chardev:console",
                "-qmp", "unix:qmp.sock,server=on,wait=off",  # relative: QEMU runs in run_dir
                "-drive", f"file={overlay},if=virtio,format=qcow2,discard=unmap",
                *seed_drive, *extra_disk, *cd_drive, *smbios,
                "-device", "virtio-rng-pci", *(peerlink.PORT_ARGS if spec.peer_network else ()),
                *(arg for device in settings.gpu_devices for arg in ("-device", device))]
        facts = PlatformFacts(provider="qemu", instance_id=instance_id, hostname=hostname,
                              arch=spec.arch, firmware=spec.firmware,
                              datasource=settings.datasource.cloud_init_name,
                              instance_type=settings.instance_type_name or f"{vcpus}x{mem}",
                              region=emulated.region if emulated else None,
                              zone=emulated.zone if emulated else None,
                              disk_size=settings.disk_size,
                              extra={"vcpus": str(vcpus), "memory_mib": str(mem),
                                     # user-mode networking offers SLAAC unless turned off
                                     "ipv6": "no" if "ipv6=off" in user_net else "yes",
                                     # restricted: DHCP hands out no router and no DNS
                                     "default_route": "no" if "restrict=on" in user_net else "yes",
                                     **_dhcp_domain(emulated),
                                     **({"upgrade_repo_url": repo_url} if repo_url else {})})
        machine = QemuMachine(run_dir, facts, spec.ssh_user, key_file, injected, {
            "accel": chosen.value, "accel_reason": why, "qemu_version": qemu_version(platform.binary),
            "firmware": spec.firmware.value, "secure_boot": "yes" if spec.secure_boot else "no",
            "image_format": info.fmt,
            "disk_size": str(settings.disk_size), "datasource": settings.datasource.value,
        })
        machine.linkable, machine.peer_rate = spec.peer_network, hooks.peer_rate
        listen_host, port_range = "127.0.0.1", settings.port_range
        if hooks.ssh_listen:
            listen_host, port = hooks.ssh_listen
            port_range = (port, port)
        machine.start(args, port_range, register_pid=partial(rundir.register_pid, run_dir),
                      die_with_parent=not spec.may_outlive_run, listen_host=listen_host,
                      net_extra=user_net, mac=hooks.mac, wall=settings.walled,
                      companion=emulated.companion if emulated else None,
                      resolve_locally=bool(emulated and emulated.dns), sealed=settings.sealed)
        return machine


def _gpu_devices(spec: LaunchSpec, instance_type: str) -> tuple[str, ...]:
    """The GPUs the instance-type table promises for *instance_type* under qemu, as -device
    values: its qemu_device once per GPU; none where the entry names no device (a declaration
    the machine then fails, as a cloud that attached none would)."""
    entry = spec.instance_types.lookup("qemu", instance_type)
    if entry is None or not entry.qemu_device:
        return ()
    return (entry.qemu_device,) * entry.gpus


def _served_repository(spec: LaunchSpec, user_net: str) -> tuple[str | None, str]:
    """The URL at which the guest reaches --upgrade's directory, and *user_net* with the forward
    that serves it to this guest alone (an address of its own network: no router needed)."""
    if spec.upgrade is None or spec.upgrade.directory is None:
        return None, user_net
    net = re.search(r"(?:^|,)net=([^,]+)", user_net)
    address = repository.guest_address(net.group(1) if net else "10.0.2.0/24")
    forward = f"guestfwd=tcp:{address}:80-{repository.command(spec.upgrade.directory)}"
    return f"http://{address}/", ",".join(filter(None, (user_net, forward)))


def _dhcp_domain(emulated: emulation.Emulation | None) -> dict[str, str]:
    """The DHCP domain options an emulated cloud sent, as PlatformFacts.extra holds them."""
    if emulated is None:
        return {}
    return {"dhcp_domain": emulated.domain, "dhcp_search": " ".join(emulated.search)}


def _emulate(spec: LaunchSpec, settings: QemuSettings, run_dir: Path,
             hostname: str) -> tuple[emulation.Emulation, seed.FirstBoot]:
    """The guest's emulated cloud, and what it is given on first boot through it."""
    instance_id = emulation.new_instance_id(settings.datasource)
    boot = seed.first_boot(spec, run_dir, instance_id, hostname)
    guest = emulation.Guest(
        arch=spec.arch, image_name=Path(spec.image).name, instance_type=settings.instance_type_name,
        ssh_user=spec.ssh_user, public_key=boot.public_key, user_data=boot.user_data,
        hostname=hostname, instance_id=instance_id)
    return emulation.EMULATORS[settings.datasource](guest, run_dir), boot


def _network(value: str | None) -> Network:
    try:
        return Network(value or Network.USER)
    except ValueError:
        raise UsageError(f"--qemu-network {value!r}: give one of "
                         f"{', '.join(n.value for n in Network)}") from None


def _escaped(path: Path | None) -> str:
    """A path inside a QEMU option value, its commas doubled."""
    return str(path).replace(",", ",,")


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

"""The plugin's command-line and ini options, and turning them into a validated LaunchSpec."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from . import seed
from .errors import UsageError
from .spec import (
    RELEASES,
    Accel,
    Arch,
    Firmware,
    HostKeySource,
    ImageType,
    KeepInstance,
    LaunchSpec,
    release_from_image_name,
)

GROUP = "debian-cloud-tests"


@dataclass(frozen=True)
class Option:
    name: str  # the long option without dashes
    help: str
    default: str | None = None
    choices: tuple[str, ...] | None = None
    multiple: bool = False

    @property
    def dest(self) -> str:
        return "dct_" + self.name.replace("-", "_")


OPTIONS: tuple[Option, ...] = (
    Option("provider", "platform to boot the image on (qemu, or an installed provider)"),
    Option("image", "candidate image: a qcow2/raw file for qemu, an image id for clouds"),
    Option("arch", "guest architecture (default: from the image name, else the host's)",
           choices=tuple(a.value for a in Arch)),
    Option("firmware", "boot firmware (default: bios on amd64, uefi on arm64)",
           choices=tuple(f.value for f in Firmware)),
    Option("image-type", "Debian image type, for checks that depend on it (default: from the "
           "image name, e.g. debian-12-genericcloud-amd64)", choices=tuple(t.value for t in ImageType)),
    Option("release", "Debian release the image holds, for checks that depend on it (default: "
           "from the image name, e.g. debian-13-…, else read from the guest's os-release)",
           choices=RELEASES),
    Option("instance-type", "instance type; for qemu VCPUSxMEMORY_MIB (default 2x1024)"),
    Option("machine-type", "gce: the machine type, GCE's name for --instance-type"),
    Option("flavor", "openstack: the flavor name or id, OpenStack's name for --instance-type"),
    Option("ssh-user", "the image's default user", default="debian"),
    Option("user-data", "extra cloud-init user-data file, merged with the framework's"),
    Option("boot-timeout", "seconds from launch to SSH ready and cloud-init done", default="600"),
    Option("boot-budget", "seconds from launch to SSH-ready a healthy image may take (default: "
           "120 with KVM or on clouds, 300 emulated)"),
    Option("keep-instance", "leave the machine running after the run and print how to reach it",
           default="never", choices=tuple(k.value for k in KeepInstance)),
    Option("accel", "qemu accelerator: auto probes KVM and falls back to TCG", default="auto",
           choices=tuple(a.value for a in Accel)),
    Option("disk-size", "disk size for the instance, absolute (8G) or relative (+1G; default)"),
    Option("host-key-source", "verify the SSH host key from the console, or inject one",
           default="console", choices=tuple(h.value for h in HostKeySource)),
    Option("ca-cert", "PEM CA certificate the guest should trust (cloud-init ca_certs); "
           "repeatable", multiple=True),
    Option("artifacts-dir", "where console logs and guest logs are collected",
           default="artifacts"),
    Option("qemu-port-range", "qemu: local ports to forward SSH from, LOW-HIGH (default: any)"),
    Option("qemu-network", "qemu: the guest's network: user (the internet through this host, "
           "walled off this host's loopback and link-local addresses), open (this host's "
           "loopback too, e.g. a local apt proxy) or isolated (nothing but the forwarded SSH "
           "port, for sandboxed CI)", default="user", choices=("user", "open", "isolated")),
    Option("region", "cloud region to launch in (default: from the cloud SDK's configuration)"),
    Option("subnet", "subnet to launch into (default: the region's default network)"),
    Option("security-group", "existing security group to use instead of creating one for the run "
           "(it must let this runner reach port 22)"),
    Option("zone", "cloud zone to launch in (gce: e.g. europe-west1-b)"),
    Option("network", "cloud network to attach the instance to (default: the project's default)"),
    Option("os-cloud", "openstack: the cloud's name in clouds.yaml (default: OS_CLOUD)"),
    Option("host", "ssh: the already-running host to test, USER@ADDRESS[:PORT]"),
    Option("ssh-key", "ssh: private key file to log in to --host with"),
    Option("host-key", "ssh: the host's public key (\"ssh-ed25519 AAAA…\") or a known_hosts file"),
    Option("datasource", "ssh: the cloud-init datasource the host's platform provides (Ec2, GCE, "
           "Azure, OpenStack, NoCloud…), so cloud_init.datasource_expected can compare"),
    Option("instance-id", "ssh: the id the host's platform gave the instance, so "
           "metadata.instance_id_matches can compare"),
)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup(GROUP, "debian-cloud-tests: boot an image and run conformance suites")
    for opt in OPTIONS:
        group.addoption(f"--{opt.name}", dest=opt.dest, default=None,
                        action="append" if opt.multiple else "store",
                        choices=opt.choices, help=opt.help)
        parser.addini(opt.dest, help=f"default for --{opt.name}",
                      type="linelist" if opt.multiple else "string", default=None)


def value(config: pytest.Config, name: str) -> Any:
    """Command line, then ini file, then the built-in default."""
    opt = next(o for o in OPTIONS if o.name == name)
    given = config.getoption(opt.dest)
    if given is None:
        given = config.getini(opt.dest) or None
        if given is not None and opt.choices and given not in opt.choices:
            raise UsageError(f"ini option {opt.dest} = {given!r}: choose from {', '.join(opt.choices)}")
    return given if given is not None else ([] if opt.multiple else opt.default)


#: a cloud's own name for --instance-type, and the provider it belongs to
INSTANCE_TYPE_SPELLINGS = {"machine-type": "gce", "flavor": "openstack"}


def instance_type(config: pytest.Config) -> str | None:
    """--instance-type, or the cloud's own spelling of it, so a GCE user's --machine-type and an
    OpenStack user's --flavor mean what they expect; spellings that disagree are refused."""
    given = {name: value(config, name) for name in ("instance-type", *INSTANCE_TYPE_SPELLINGS)}
    given = {name: v for name, v in given.items() if v}
    provider = value(config, "provider")
    for name, owner in INSTANCE_TYPE_SPELLINGS.items():
        if name in given and provider and provider != owner:
            raise UsageError(f"--{name} is {owner}'s name for the instance type; with "
                             f"--provider={provider} give --instance-type")
    if len(set(given.values())) > 1:
        raise UsageError("conflicting instance types: " + ", ".join(
            f"--{name} {v}" for name, v in given.items()) + "; give one")
    return next(iter(given.values()), None)


def build_spec(config: pytest.Config, run_id: str) -> LaunchSpec:
    """The launch spec from the options (before the provider validates it)."""
    image = value(config, "image")
    if not image:
        raise UsageError("--image is required with --provider (a disk image file for qemu)")
    arch_value = value(config, "arch")
    arch = Arch(arch_value) if arch_value else (Arch.from_image_name(Path(image).name) or Arch.host())
    firmware = value(config, "firmware")
    type_value = value(config, "image-type")
    image_type = ImageType(type_value) if type_value else ImageType.from_image_name(Path(image).name)
    try:
        timeout = float(value(config, "boot-timeout"))
    except ValueError:
        raise UsageError(f"--boot-timeout {value(config, 'boot-timeout')!r}: give seconds") from None
    if timeout <= 0:
        raise UsageError("--boot-timeout must be positive")
    user_data = value(config, "user-data")
    if user_data and not Path(user_data).is_file():
        raise UsageError(f"--user-data {user_data}: no such file")
    options = {}
    if value(config, "qemu-port-range"):
        options["port_range"] = value(config, "qemu-port-range")
    options["qemu_network"] = value(config, "qemu-network")
    if value(config, "qemu-network") == "isolated":
        options["user_net"] = "restrict=on"
    for name in ("region", "subnet", "security-group", "zone", "network", "os-cloud", "host",
                 "ssh-key", "host-key", "datasource", "instance-id"):
        if value(config, name):
            options[name.replace("-", "_")] = value(config, name)
    # read now, as a launch would: a bad file is a usage error before anything is created
    seed.check_user_input(Path(user_data) if user_data else None,
                          [Path(p) for p in value(config, "ca-cert")])
    return LaunchSpec(
        image=image, arch=arch, firmware=Firmware(firmware) if firmware else None,
        instance_type=instance_type(config), ssh_user=value(config, "ssh-user"),
        user_data=Path(user_data) if user_data else None, boot_timeout=timeout,
        accel=Accel(value(config, "accel")), disk_size=value(config, "disk-size"),
        host_key_source=HostKeySource(value(config, "host-key-source")),
        ca_certs=[Path(p) for p in value(config, "ca-cert")], run_id=run_id, options=options,
        image_type=image_type,
        release=value(config, "release") or release_from_image_name(Path(image).name))

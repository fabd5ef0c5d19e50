"""The plugin's command-line and ini options, and turning them into a validated LaunchSpec.

The options every run has are here; a provider declares its own (`Provider.options`), and they
join these wherever the provider is installed, so no option here names a provider."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from . import instancetypes, seed
from .errors import SecureBootUnavailableError, UsageError
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
from .upgrade import source as upgrade_source

GROUP = "debian-cloud-tests"


@dataclass(frozen=True)
class Option:
    name: str  # the long option without dashes
    help: str
    default: str | None = None
    choices: tuple[str, ...] | None = None
    multiple: bool = False
    #: a provider's option: the LaunchSpec.options key it is passed by (default: its name, with _)
    key: str | None = None
    #: a provider's own name for --instance-type (a cloud's "machine type" or "flavor")
    instance_type_alias: bool = False
    #: a switch: given alone on the command line; its ini key takes yes/no
    flag: bool = False

    @property
    def dest(self) -> str:
        return "dct_" + self.name.replace("-", "_")

    @property
    def spec_key(self) -> str:
        return self.key or self.name.replace("-", "_")


OPTIONS: tuple[Option, ...] = (
    Option("provider", "platform to boot the image on (`debian-cloud-tests providers` lists the "
           "installed ones)"),
    Option("image", "candidate image: a disk image file for a local machine, an image id for clouds"),
    Option("arch", "guest architecture (default: from the image name, else the host's)",
           choices=tuple(a.value for a in Arch)),
    Option("firmware", "boot firmware (default: bios on amd64, uefi on arm64)",
           choices=tuple(f.value for f in Firmware)),
    Option("secure-boot", "boot with UEFI Secure Boot enforced (firmware with Microsoft's keys "
           "enrolled; implies --firmware=uefi)", flag=True),
    Option("image-type", "Debian image type, for checks that depend on it (default: from the "
           "image name, e.g. debian-12-genericcloud-amd64)", choices=tuple(t.value for t in ImageType)),
    Option("release", "Debian release the image holds, for checks that depend on it (default: "
           "from the image name, e.g. debian-13-…, else read from the guest's os-release)",
           choices=RELEASES),
    Option("instance-type", "instance type (the provider says what it takes: VCPUSxMEMORY_MIB for "
           "local machines)"),
    Option("ssh-user", "the image's default user", default="debian"),
    Option("user-data", "extra cloud-init user-data file, merged with the framework's"),
    Option("boot-timeout", "seconds from launch to SSH ready and cloud-init done", default="600"),
    Option("boot-budget", "seconds from launch to SSH-ready a healthy image may take (default: "
           "120 with KVM or on clouds, 300 emulated)"),
    Option("keep-instance", "leave the machine running after the run and print how to reach it",
           default="never", choices=tuple(k.value for k in KeepInstance)),
    Option("accel", "accelerator of a local machine: auto probes KVM and falls back to TCG", default="auto",
           choices=tuple(a.value for a in Accel)),
    Option("disk-size", "disk size for the instance, absolute (8G) or relative (+1G; default)"),
    Option("host-key-source", "verify the SSH host key from the console, or inject one",
           default="console", choices=tuple(h.value for h in HostKeySource)),
    Option("ca-cert", "PEM CA certificate the guest should trust (cloud-init ca_certs); "
           "repeatable", multiple=True),
    Option("instance-types", "TOML table of what instance types promise (GPUs, a network "
           "throughput floor), merged over the shipped one; repeatable, later files win",
           multiple=True),
    Option("upgrade", "run the upgrade suite (apt-get full-upgrade, reboot into the new kernel) "
           "from: own (the image's own apt sources), a signed apt repository directory (a local "
           "machine's provider serves it to that machine only) or 'URL SUITE COMPONENT…'"),
    Option("upgrade-key", "OpenPGP public key (armored or binary) that signs --upgrade's repository"),
    Option("artifacts-dir", "where console logs and guest logs are collected",
           default="artifacts"),
)

_COMMON_NAMES = frozenset(o.name for o in OPTIONS)

#: options several clouds take, for their providers to declare alike
REGION = Option("region", "cloud region to launch in (default: from the cloud SDK's configuration)")
ZONE = Option("zone", "cloud zone to launch in (e.g. europe-west1-b)")
NETWORK = Option("network", "cloud network to attach the instance to (default: the project's default)")
SUBNET = Option("subnet", "subnet to launch into (default: the region's default network)")
DATASOURCE = Option("datasource", "the cloud whose cloud-init datasource the machine gets: qemu "
                    "emulates it (ec2, gce, azure, openstack, configdrive or nocloud; default: the "
                    "image type's cloud, nocloud for generic images); ssh compares with what the "
                    "host's platform provides (ec2 or cloud-init's name: Ec2, GCE, Azure…)")
SECURITY_GROUP = Option("security-group", "existing security group to use instead of creating one "
                        "for the run (it must let this runner reach port 22)")


def _declared(attribute: str) -> dict[str, tuple[Option, tuple[str, ...]]]:
    """The options the installed providers declare in *attribute*: name -> (option, the
    providers declaring it); one several declare (--region) is one option, its first's."""
    from .provider import provider_classes

    found: dict[str, tuple[Option, tuple[str, ...]]] = {}
    for name, cls in sorted(provider_classes().items()):
        for opt in getattr(cls, attribute):
            first, owners = found.get(opt.name, (opt, ()))
            found[opt.name] = (first, (*owners, name))
    return found


def provider_options() -> dict[str, tuple[Option, tuple[str, ...]]]:
    """Every run option the installed providers declare, with the providers declaring it."""
    return _declared("options")


def scope_options() -> dict[str, tuple[Option, tuple[str, ...]]]:
    """Where installed providers' resources live (region, project…), with the providers taking
    each: the flags of the `gc` and `providers` commands."""
    return _declared("scope_options")


def add_scope_arguments(parser: Any) -> None:
    """The scope options as flags of an argparse command, each naming the providers taking it."""
    for opt, owners in scope_options().values():
        parser.add_argument(f"--{opt.name}", dest=opt.spec_key, help=f"{opt.help} [{', '.join(owners)}]")


def all_options() -> tuple[Option, ...]:
    """The common options, then the providers' (help naming the providers that take each)."""
    declared = tuple(replace(opt, help=f"{opt.help} [{', '.join(owners)}]")
                     for opt, owners in provider_options().values() if opt.name not in _COMMON_NAMES)
    return OPTIONS + declared


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup(GROUP, "debian-cloud-tests: boot an image and run conformance suites")
    for opt in all_options():
        if opt.flag:
            group.addoption(f"--{opt.name}", dest=opt.dest, default=None, action="store_const",
                            const="yes", help=opt.help)
        else:
            group.addoption(f"--{opt.name}", dest=opt.dest, default=None,
                            action="append" if opt.multiple else "store",
                            choices=opt.choices, help=opt.help)
        parser.addini(opt.dest, help=f"default for --{opt.name}",
                      type="linelist" if opt.multiple else "string", default=None)


def value(config: pytest.Config, name: str) -> Any:
    """Command line, then ini file, then the built-in default."""
    opt = next(o for o in all_options() if o.name == name)
    given = config.getoption(opt.dest)
    if given is None:
        given = config.getini(opt.dest) or None
        if given is not None and opt.choices and given not in opt.choices:
            raise UsageError(f"ini option {opt.dest} = {given!r}: choose from {', '.join(opt.choices)}")
    return given if given is not None else ([] if opt.multiple else opt.default)


_YES, _NO = ("yes", "true", "on", "1"), ("no", "false", "off", "0", "")


def switch(config: pytest.Config, name: str) -> bool:
    """A flag option: given on the command line, else yes or no in the ini file."""
    given = str(value(config, name) or "").strip().lower()
    if given in _YES or given in _NO:
        return given in _YES
    raise UsageError(f"ini option dct_{name.replace('-', '_')} = {given!r}: write yes or no")


def instance_type(config: pytest.Config) -> str | None:
    """--instance-type, or the cloud's own spelling of it, so a GCE user's --machine-type and an
    OpenStack user's --flavor mean what they expect; spellings that disagree are refused."""
    aliases = {name: owners for name, (opt, owners) in provider_options().items()
               if opt.instance_type_alias}
    given = {name: value(config, name) for name in ("instance-type", *aliases)}
    given = {name: v for name, v in given.items() if v}
    provider = value(config, "provider")
    for name, owners in aliases.items():
        if name in given and provider and provider not in owners:
            raise UsageError(f"--{name} is {', '.join(owners)}'s name for the instance type; with "
                             f"--provider={provider} give --instance-type")
    if len(set(given.values())) > 1:
        raise UsageError("conflicting instance types: " + ", ".join(
            f"--{name} {v}" for name, v in given.items()) + "; give one")
    return next(iter(given.values()), None)


def build_spec(config: pytest.Config, run_id: str) -> LaunchSpec:
    """The launch spec from the options (before the provider validates it)."""
    image = value(config, "image")
    if not image:
        raise UsageError("--image is required with --provider (a disk image file for a local machine)")
    arch_value = value(config, "arch")
    arch = Arch(arch_value) if arch_value else (Arch.from_image_name(Path(image).name) or Arch.host())
    firmware = value(config, "firmware")
    secure_boot = switch(config, "secure-boot")
    if secure_boot and firmware == Firmware.BIOS:
        raise SecureBootUnavailableError("--secure-boot needs UEFI firmware: BIOS has no Secure "
                                         "Boot; use --firmware=uefi (or omit --firmware)")
    firmware = firmware or (Firmware.UEFI.value if secure_boot else None)
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
    # the providers' own options, by the keys they read them by (an alias of --instance-type is
    # passed as the instance type)
    options = {opt.spec_key: given for opt, _ in provider_options().values()
               if not opt.instance_type_alias and (given := value(config, opt.name))}
    command_line = frozenset(opt.spec_key for opt, _ in provider_options().values()
                             if config.getoption(opt.dest) is not None)
    # read now, as a launch would: a bad file is a usage error before anything is created
    seed.check_user_input(Path(user_data) if user_data else None,
                          [Path(p) for p in value(config, "ca-cert")])
    table = instancetypes.load([Path(p) for p in value(config, "instance-types")])
    return LaunchSpec(
        image=image, arch=arch, firmware=Firmware(firmware) if firmware else None,
        instance_type=instance_type(config), ssh_user=value(config, "ssh-user"),
        user_data=Path(user_data) if user_data else None, boot_timeout=timeout,
        accel=Accel(value(config, "accel")), disk_size=value(config, "disk-size"),
        host_key_source=HostKeySource(value(config, "host-key-source")),
        ca_certs=[Path(p) for p in value(config, "ca-cert")], run_id=run_id, options=options,
        command_line=command_line, image_type=image_type, instance_types=table,
        secure_boot=secure_boot,
        upgrade=upgrade_source.parse(value(config, "upgrade"), value(config, "upgrade-key")),
        release=value(config, "release") or release_from_image_name(Path(image).name))

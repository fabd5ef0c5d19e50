"""The ssh provider: ``--provider=ssh --host=debian@192.0.2.10 --ssh-key=KEY --host-key=…`` runs
the suites on a host that is already running (a bare-metal box, a VM someone else started).

Nothing is created or destroyed.  The host key must be known beforehand (given literally or
through a known_hosts file): there is no console to learn it from, and trusting the first key
presented would defeat the point of verifying it.  The platform facts come from the options
given (``--datasource`` names the cloud-init datasource the platform provides); what is unknown
(the instance id) is left empty.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from debian_cloud_tests.datasources.platforms import Datasource
from debian_cloud_tests.errors import UsageError
from debian_cloud_tests.machine import Machine, PlatformFacts, SSHEndpoint
from debian_cloud_tests.options import DATASOURCE, REGION, ZONE, Option
from debian_cloud_tests.provider import Provider
from debian_cloud_tests.spec import LaunchSpec, ProviderSettings

from .machine import SshMachine

_HOST = re.compile(r"^(?:(?P<user>[^@\s:]+)@)?(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[^@\s:\[\]]+))"
                   r"(?::(?P<port>\d{1,5}))?$")
KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
             "ssh-rsa")


def parse_host(value: str) -> tuple[str | None, str, int]:
    """USER@ADDRESS[:PORT] (an IPv6 address in brackets) as (user, address, port)."""
    m = _HOST.match(value.strip())
    port = int(m.group("port") or 22) if m else 0
    if not m or not 0 < port < 65536:
        raise UsageError(f"--host {value!r}: give USER@ADDRESS[:PORT], e.g. debian@192.0.2.10:22")
    return m.group("user"), m.group("v6") or m.group("name"), port


def check_private_key(path: str) -> Path:
    """The key must exist and be a private key paramiko can load without a passphrase."""
    import paramiko

    key_file = Path(path).expanduser()
    if not key_file.is_file():
        raise UsageError(f"--ssh-key {path}: no such file")
    try:
        paramiko.PKey.from_path(key_file)
    except paramiko.PasswordRequiredException:
        raise UsageError(f"--ssh-key {path}: the key is encrypted; give an unencrypted key") from None
    except (paramiko.SSHException, OSError, ValueError) as exc:
        raise UsageError(f"--ssh-key {path}: not a usable private key ({exc})") from None
    return key_file


def known_host_keys(value: str, address: str, port: int) -> list[str]:
    """The host's public keys, from a literal "TYPE BASE64" or a known_hosts file."""
    import paramiko

    literal = value.strip().split()
    if literal and literal[0] in KEY_TYPES:
        if len(literal) < 2:
            raise UsageError(f"--host-key {value[:40]!r}: give \"TYPE BASE64\" as in a .pub file")
        try:
            paramiko.PKey.from_type_string(literal[0], base64.b64decode(literal[1], validate=True))
        except Exception:
            raise UsageError(f"--host-key: not a valid {literal[0]} public key") from None
        return [f"{literal[0]} {literal[1]}"]
    path = Path(value).expanduser()
    if not path.is_file():
        raise UsageError(f"--host-key {value[:60]!r}: neither a public key (\"ssh-ed25519 AAAA…\") "
                         "nor a known_hosts file")
    try:
        known = paramiko.HostKeys(str(path))
    except (OSError, paramiko.SSHException, UnicodeDecodeError) as exc:
        raise UsageError(f"--host-key {path}: not a known_hosts file ({exc})") from None
    name = address if port == 22 else f"[{address}]:{port}"
    found = known.lookup(name) or {}
    keys = [f"{kind} {key.get_base64()}" for kind, key in found.items()]
    if not keys:
        raise UsageError(f"--host-key {path}: no key for {name} in it; add one with "
                         f"ssh-keyscan -p {port} {address} (and check it out of band)")
    return keys


@dataclass(frozen=True)
class SshSettings(ProviderSettings):
    address: str
    port: int
    key_file: Path
    known_keys: tuple[str, ...]  # the host keys the host must present, "TYPE BASE64"
    #: what the host's platform is said to have given it (empty or None: not said)
    datasource: str
    instance_id: str
    region: str | None
    zone: str | None


class SshProvider(Provider):
    name = "ssh"
    secure_boot_refused = None  # --secure-boot declares the host booted under it
    starts_machines = False
    options = (
        Option("host", "the already-running host to test, USER@ADDRESS[:PORT]"),
        Option("ssh-key", "private key file to log in to --host with"),
        Option("host-key", "the host's public key (\"ssh-ed25519 AAAA…\") or a known_hosts file"),
        DATASOURCE,
        Option("instance-id", "the id the host's platform gave the instance, so "
               "metadata.instance_id_matches can compare"),
        REGION, ZONE,
    )

    def preflight(self, options: Mapping[str, str] | None = None) -> str:
        return "nothing to find: give --host, --ssh-key, --host-key"

    def validate(self, spec: LaunchSpec) -> LaunchSpec:
        host = spec.options.get("host")
        if not host:
            raise UsageError("ssh: --host USER@ADDRESS[:PORT] is required with --provider=ssh")
        user, address, port = parse_host(host)
        if not spec.options.get("ssh_key"):
            raise UsageError("ssh: --ssh-key PATH (the private key to log in with) is required")
        key_file = check_private_key(spec.options["ssh_key"])
        if not spec.options.get("host_key"):
            raise UsageError("ssh: --host-key is required: the host's public key "
                             "(\"ssh-ed25519 AAAA…\") or a known_hosts file that has it")
        keys = known_host_keys(spec.options["host_key"], address, port)
        datasource = spec.options.get("datasource", "")
        if datasource.lower() in {d.value for d in Datasource}:  # the qemu provider's names
            datasource = Datasource(datasource.lower()).cloud_init_name
        if datasource and not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", datasource):
            raise UsageError(f"--datasource {datasource!r}: give cloud-init's name for it, "
                             "e.g. Ec2, GCE, Azure, OpenStack, NoCloud")
        settings = SshSettings(
            address=address, port=port, key_file=key_file, known_keys=tuple(keys),
            datasource=datasource, instance_id=spec.options.get("instance_id", ""),
            region=spec.options.get("region"), zone=spec.options.get("zone"))
        return replace(spec, ssh_user=user or spec.ssh_user, settings=settings)

    def launch(self, spec: LaunchSpec, run_dir: Path) -> Machine:
        s = spec.settings_as(SshSettings)
        endpoint = SSHEndpoint(s.address, s.port, spec.ssh_user, s.key_file)
        facts = PlatformFacts(
            # the name it is reached by is not the one it calls itself (an EC2 public DNS name
            # is not its ip-… hostname): the hostname is not known
            provider="ssh", instance_id=s.instance_id, hostname="", arch=spec.arch,
            firmware=spec.firmware, datasource=s.datasource, instance_type=spec.instance_type,
            region=s.region, zone=s.zone, extra={"address": s.address})
        return SshMachine(facts, endpoint, list(s.known_keys))



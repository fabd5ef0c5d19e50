"""One guest's emulated cloud: what its metadata service serves, how QEMU shows it the platform
(SMBIOS, the NIC's MAC, the user network with the metadata address relayed to the emulator, the
provisioning media), and what the metadata suite should find in the guest afterwards.

The emulator itself runs as :mod:`.serve`, a child of the guest's QEMU (so it lives and dies with
the machine, kept or not), answering on a unix socket in the run directory that QEMU's relays
connect to: nothing is bound to a network address, and only this guest reaches it.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import secrets
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from debian_cloud_tests.spec import Arch

from . import relay
from .azure import IMDS_HOST, WIRESERVER_HOST, AzureVmData
from .configdrive import write_config_drive
from .ec2 import InstanceData
from .gce import GceInstanceData
from .openstack import NovaServerData
from .ovf import OvfEnv, write_ovf_iso
from .platforms import Datasource

METADATA_ADDRESS = "169.254.169.254"
#: the user network holding the metadata address; QEMU's DHCP gives the guest its 15th address
LINK_LOCAL_NET, LINK_LOCAL_GUEST = "169.254.169.0/24", "169.254.169.15"
#: Azure's: both of its fixed addresses (IMDS and the wireserver) inside one network
AZURE_NET, AZURE_GUEST = "168.0.0.0/7", "168.0.0.15"
AZURE_CHASSIS_ASSET_TAG = "7783-7084-3265-9085-8269-3286-77"
#: documentation addresses (RFC 5737): a public address the metadata names, never reached
PUBLIC_ADDRESS = "203.0.113.10"
#: Neutron's DHCP domain unless the deployment sets its own (dns_domain)
NEUTRON_DOMAIN = "openstacklocal"
SOCKET, CONFIG, LOG = "metadata.sock", "datasource.json", "datasource.log"
#: how the log records a provisioning report (Azure's health report: "health Ready")
HEALTH = "health "
REGIONS = {Datasource.EC2: ("eu-central-1", "eu-central-1a"),
           Datasource.GCE: ("europe-west1", "europe-west1-b"),
           Datasource.AZURE: ("westeurope", None),
           Datasource.OPENSTACK: (None, "nova"), Datasource.CONFIGDRIVE: (None, "nova")}


@dataclass(frozen=True)
class Guest:
    """What the run knows of the guest it emulates a cloud for."""

    arch: Arch
    image_name: str
    instance_type: str
    ssh_user: str
    public_key: str  # the run's client key, as the cloud's key pair
    user_data: str
    hostname: str  # what the platform names it (a cloud may derive its own)
    instance_id: str  # new_instance_id's


@dataclass(frozen=True)
class Emulation:
    datasource: Datasource
    smbios: tuple[str, ...]
    mac: str
    #: more user-network options: the network's prefix, the relays to the emulator, the
    #: DHCP domain options (see :func:`_user_net`)
    user_net: str
    #: the platform's view, for the metadata suite
    instance_id: str
    hostname: str
    region: str | None
    zone: str | None
    #: a CD-ROM with provisioning media (Azure), a read-only disk (a config drive)
    cdrom: Path | None = None
    drive: Path | None = None
    #: names the guest resolves (GCE's metadata server); needs a resolver of the run's own
    dns: dict[str, str] = field(default_factory=dict)
    #: the emulator's configuration file (None: nothing to serve, e.g. a config drive)
    server_config: Path | None = None
    #: DHCP's domain name (option 15) and search list (option 119), as the cloud's DHCP sends
    domain: str = ""
    search: tuple[str, ...] = ()

    def companion(self, upstream_resolver: str | None) -> list[str] | None:
        """The command that serves this guest's metadata (and names), run beside its QEMU."""
        if self.server_config is None:
            return None
        upstream = [f"--upstream={upstream_resolver}"] if upstream_resolver and self.dns else []
        return [sys.executable, "-m", "debian_cloud_tests.datasources.serve",
                str(self.server_config), *upstream]


def new_instance_id(datasource: Datasource) -> str:
    """An instance id as the cloud spells them: known before the user-data, which carries it."""
    if datasource is Datasource.EC2:
        return "i-0" + secrets.token_hex(8)
    if datasource is Datasource.GCE:
        return str(int.from_bytes(secrets.token_bytes(8)) >> 1)
    return str(uuid.uuid4())  # Azure's vmId, Nova's server UUID


def _user_net(network: str | None, relayed: tuple[str, ...], domain: str,
              search: tuple[str, ...] = ()) -> str:
    """QEMU user-network options: the network, relays of *relayed* addresses' port 80 to the
    emulator, and the DHCP domain options the cloud's DHCP server sends (its MTU, e.g. GCE's
    1460, and Azure's option 245 are beyond what QEMU's DHCP server can send)."""
    parts = [f"net={network}"] if network else []
    parts += [f"guestfwd=tcp:{a}:80-{relay.command(SOCKET)}" for a in relayed]
    parts += [f"domainname={domain}", *(f"dnssearch={s}" for s in search)]
    return ",".join(parts)


def _write_config(run_dir: Path, datasource: Datasource, data: dict[str, Any],
                  dns: dict[str, str] | None = None) -> Path:
    path = run_dir / CONFIG
    path.write_text(json.dumps({"datasource": datasource.value, "data": data, "socket": SOCKET,
                                "log": LOG, "dns": dns or {}}))
    return path


def _hex_id(seed: str, length: int) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


def _mac(prefix: str) -> str:
    return prefix + ":" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3))


def ec2_smbios(instance_type: str) -> tuple[str, ...]:
    """An EC2 instance's SMBIOS: Amazon EC2, the type as product, an ``ec2…`` UUID and serial."""
    dmi = "ec2" + uuid.uuid4().hex[3:]
    dmi = f"{dmi[:8]}-{dmi[8:12]}-{dmi[12:16]}-{dmi[16:20]}-{dmi[20:]}"
    return (f"type=1,manufacturer=Amazon EC2,product={instance_type},serial={dmi},uuid={dmi}",)


def gce_smbios() -> tuple[str, ...]:
    """A GCE instance's SMBIOS: Google Compute Engine, a ``GoogleCloud-…`` serial."""
    dmi = str(uuid.uuid4())
    return ("type=1,manufacturer=Google,product=Google Compute Engine,"
            f"serial=GoogleCloud-{dmi.replace('-', '').upper()},uuid={dmi}",)


def azure_smbios(vm_id: str) -> tuple[str, ...]:
    """An Azure VM's SMBIOS: Microsoft's Virtual Machine with the vmId, Azure's chassis tag."""
    return ("type=1,manufacturer=Microsoft Corporation,product=Virtual Machine,version=7.0,"
            f"serial=0000-0000-0000-0000-0000-0000-00,uuid={vm_id}",
            f"type=3,manufacturer=Microsoft Corporation,asset={AZURE_CHASSIS_ASSET_TAG}")


def nova_smbios(server_id: str) -> tuple[str, ...]:
    """A Nova server's SMBIOS: OpenStack Nova, the server's UUID."""
    return ("type=1,manufacturer=OpenStack Foundation,product=OpenStack Nova,"
            f"serial={server_id},uuid={server_id}",)


def ec2(guest: Guest, run_dir: Path) -> Emulation:
    region, zone = REGIONS[Datasource.EC2]
    instance_id = guest.instance_id
    mac = _mac("0e:" + secrets.token_hex(1) + ":" + secrets.token_hex(1))
    private_dns = f"ip-{LINK_LOCAL_GUEST.replace('.', '-')}.{region}.compute.internal"
    data = InstanceData(
        instance_id=instance_id, image_id="ami-0" + _hex_id(guest.image_name, 16),
        instance_type=guest.instance_type, region=region, zone=str(zone),
        private_ip=LINK_LOCAL_GUEST, private_dns=private_dns, public_ip=PUBLIC_ADDRESS, mac=mac,
        subnet_id="subnet-0" + secrets.token_hex(8), vpc_id="vpc-0" + secrets.token_hex(8),
        security_groups={"sg-0" + secrets.token_hex(8): "default"}, account_id="123456789012",
        reservation_id="r-0" + secrets.token_hex(8),
        architecture="arm64" if guest.arch is Arch.ARM64 else "x86_64", tokens_required=True,
        user_data=guest.user_data.encode(), public_keys={"debian-cloud-tests": guest.public_key})
    # a VPC's default DHCP option set: the region's domain name, no search list of its own
    domain = f"{region}.compute.internal"
    return Emulation(
        Datasource.EC2, ec2_smbios(guest.instance_type), mac,
        _user_net(LINK_LOCAL_NET, (METADATA_ADDRESS,), domain), instance_id,
        private_dns.split(".")[0], region, zone,
        server_config=_write_config(run_dir, Datasource.EC2, _fields(data)), domain=domain)


def gce_mac(address: str) -> str:
    """GCE's MAC for an address: 42:01 then the IPv4 address's four bytes."""
    return "42:01:" + ":".join(f"{int(b):02x}" for b in address.split("."))


def gce(guest: Guest, run_dir: Path) -> Emulation:
    region, zone = REGIONS[Datasource.GCE]
    instance_id = guest.instance_id
    mac = gce_mac(LINK_LOCAL_GUEST)
    data = GceInstanceData(
        instance_id=instance_id, name=guest.hostname, zone=str(zone), project="debian-cloud-tests",
        project_number="123456789012", machine_type=guest.instance_type,
        image=f"projects/debian-cloud/global/images/{Path(guest.image_name).stem}",
        network_ip=LINK_LOCAL_GUEST, external_ip=PUBLIC_ADDRESS, mac=mac,
        attributes={"ssh-keys": f"{guest.ssh_user}:{guest.public_key}", "user-data": guest.user_data})
    dns = {"metadata.google.internal": METADATA_ADDRESS}
    # zonal DNS: the zone's domain, then the project's, then Google's
    search = (f"{zone}.c.{data.project}.internal", f"c.{data.project}.internal", "google.internal")
    return Emulation(
        Datasource.GCE, gce_smbios(), mac,
        _user_net(LINK_LOCAL_NET, (METADATA_ADDRESS,), search[0], search), instance_id,
        guest.hostname, region, zone, dns=dns,
        server_config=_write_config(run_dir, Datasource.GCE, _fields(data), dns),
        domain=search[0], search=search)


def azure(guest: Guest, run_dir: Path) -> Emulation:
    location, _ = REGIONS[Datasource.AZURE]
    vm_id = guest.instance_id
    mac = _mac("00:0d:3a")
    keys = [{"path": f"/home/{guest.ssh_user}/.ssh/authorized_keys", "keyData": guest.public_key}]
    data = AzureVmData(
        vm_id=vm_id, name=guest.hostname, location=str(location), vm_size=guest.instance_type,
        resource_group="debian-cloud-tests", subscription=str(uuid.uuid4()),
        admin_username=guest.ssh_user, computer_name=guest.hostname, public_keys=keys,
        image={"publisher": "Debian", "offer": Path(guest.image_name).stem, "sku": "local",
               "version": "0.0.0"},
        mac=mac, private_ip=AZURE_GUEST, subnet=(AZURE_NET.split("/")[0], AZURE_NET.split("/")[1]),
        public_ip=PUBLIC_ADDRESS)
    media = write_ovf_iso(run_dir / "ovf-env.iso", OvfEnv(
        hostname=guest.hostname, username=guest.ssh_user, public_keys=keys,
        custom_data=base64.b64encode(guest.user_data.encode()).decode()))
    # a virtual network's own domain under Azure's internal DNS
    domain = f"{secrets.token_hex(12)}.ax.internal.cloudapp.net"
    return Emulation(
        Datasource.AZURE, azure_smbios(vm_id), mac,
        _user_net(AZURE_NET, (IMDS_HOST, WIRESERVER_HOST), domain), vm_id, guest.hostname,
        location, None, cdrom=media,
        server_config=_write_config(run_dir, Datasource.AZURE, _fields(data)), domain=domain)


def _nova(guest: Guest) -> NovaServerData:
    server_id = guest.instance_id
    return NovaServerData(
        uuid=server_id, name=guest.hostname, hostname=guest.hostname,
        availability_zone=str(REGIONS[Datasource.OPENSTACK][1]), project_id=secrets.token_hex(16),
        mac=_mac("fa:16:3e"), network_id=str(uuid.uuid4()),
        public_keys={"debian-cloud-tests": guest.public_key}, user_data=guest.user_data.encode())


def openstack(guest: Guest, run_dir: Path) -> Emulation:
    nova = _nova(guest)
    # Nova's EC2-compatible tree names the flavor: the instance type a guest can see
    ec2_tree = InstanceData(
        instance_id="i-" + _hex_id(nova.uuid, 8), image_id="ami-" + _hex_id(guest.image_name, 8),
        instance_type=guest.instance_type, region="RegionOne", zone=nova.availability_zone,
        private_ip=LINK_LOCAL_GUEST, private_dns=f"{nova.hostname}.novalocal", public_ip="",
        mac=nova.mac, subnet_id="", vpc_id="", security_groups={"default": "default"},
        account_id=nova.project_id, reservation_id=f"r-{nova.uuid[:8]}",
        architecture="arm64" if guest.arch is Arch.ARM64 else "x86_64", tokens_required=False,
        public_keys=dict(nova.public_keys))
    config = _write_config(run_dir, Datasource.OPENSTACK,
                           {"nova": _fields(nova), "ec2": _fields(ec2_tree)})
    return Emulation(Datasource.OPENSTACK, nova_smbios(nova.uuid), nova.mac,
                     _user_net(LINK_LOCAL_NET, (METADATA_ADDRESS,), NEUTRON_DOMAIN), nova.uuid,
                     guest.hostname, None, nova.availability_zone, server_config=config,
                     domain=NEUTRON_DOMAIN)


def configdrive(guest: Guest, run_dir: Path) -> Emulation:
    nova = _nova(guest)
    drive = write_config_drive(run_dir / "config-drive.iso", nova)
    return Emulation(Datasource.CONFIGDRIVE, nova_smbios(nova.uuid), nova.mac,
                     _user_net(None, (), NEUTRON_DOMAIN), nova.uuid, guest.hostname, None,
                     nova.availability_zone, drive=drive, domain=NEUTRON_DOMAIN)


EMULATORS = {Datasource.EC2: ec2, Datasource.GCE: gce, Datasource.AZURE: azure,
             Datasource.OPENSTACK: openstack, Datasource.CONFIGDRIVE: configdrive}


def _fields(data: Any) -> dict[str, Any]:
    """A data class as JSON holds it (bytes as base64 under ``<name>_b64``)."""
    out: dict[str, Any] = {}
    for key, value in dataclasses.asdict(data).items():
        if isinstance(value, bytes):
            out[f"{key}_b64"] = base64.b64encode(value).decode()
        else:
            out[key] = value
    return out


def from_fields(kind: type[Any], given: dict[str, Any]) -> Any:
    """The data class *kind* from :func:`_fields`'s form."""
    values = {k: v for k, v in given.items() if not k.endswith("_b64")}
    values.update({k[:-4]: base64.b64decode(v) for k, v in given.items() if k.endswith("_b64")})
    if "subnet" in values and isinstance(values["subnet"], list):
        values["subnet"] = tuple(values["subnet"])
    return kind(**values)

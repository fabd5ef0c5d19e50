"""The openstack provider: ``pytest --provider=openstack --os-cloud=mycloud
--image=debian-12-genericcloud-amd64`` boots a Glance image on Nova.

validate() checks the image, the flavor and the network before anything exists; launch()
creates a key pair, a security group open to this runner only and one server whose user-data
authorises the run's SSH key, all marked with the run, and removes what it created if it cannot
hand back a machine.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from debian_cloud_tests import interrupts, rundir, runneraddr, seed, sshkeys
from debian_cloud_tests.errors import (
    ArchFirmwareError,
    ImageNotFoundError,
    UsageError,
    note_cleanup_failures,
)
from debian_cloud_tests.junitprops import Prop
from debian_cloud_tests.locator.model import parse_alias
from debian_cloud_tests.locator.registry import resolve_spec
from debian_cloud_tests.machine import Machine, PlatformFacts, SSHEndpoint
from debian_cloud_tests.options import NETWORK, REGION, SECURITY_GROUP, ZONE, Option
from debian_cloud_tests.provider import Provider
from debian_cloud_tests.spec import Arch, Firmware, HostKeySource, LaunchSpec, ProviderSettings, Shape

from . import resources, retry, session
from .errors import OpenStackError
from .images import OpenStackImages
from .instance import Created, OpenStackMachine
from .network import address_of, fixed_address, pick_network

ARCHES = {"x86_64": Arch.AMD64, "amd64": Arch.AMD64, "aarch64": Arch.ARM64, "arm64": Arch.ARM64}
#: the default flavor is the smallest with at least this much (and the image's own minimums)
MIN_VCPUS, MIN_RAM_MIB = 1, 1024
FAILED = frozenset({"ERROR", "DELETED", "SOFT_DELETED", "SHUTOFF"})


@dataclass(frozen=True)
class OpenStackSettings(ProviderSettings):
    os_cloud: str | None  # the clouds.yaml entry given (None: the environment's)
    region: str | None  # the region given (None: the cloud's default)
    cloud_name: str  # what the connection says it is
    region_name: str
    image_id: str
    image_name: str
    flavor_id: str
    shape: Shape
    disk_gb: int  # the flavor's root disk (0: the image's size)
    network_id: str
    network_name: str
    zone: str | None
    #: the user's group; None: the run makes one open to ssh_source only
    security_group_id: str | None
    ssh_source: str | None


class OpenStackProvider(Provider):
    name = "openstack"
    secure_boot_refused = ("on OpenStack Secure Boot is the image's os_secure_boot property, not a "
                           "launch parameter")
    options = (Option("flavor", "the flavor name or id, OpenStack's name for --instance-type",
                      instance_type_alias=True), REGION, ZONE, NETWORK, SECURITY_GROUP,
               Option("os-cloud", "the cloud's name in clouds.yaml (default: OS_CLOUD)"))
    scope_options = (REGION, Option("os-cloud", "the cloud's name in clouds.yaml (default: "
                                    "OS_CLOUD)"))
    #: each launch makes its own key pair, security group and server, all named for it; the
    #: connection is made once per cloud and region, under the lock
    concurrent_launches = True
    #: two servers on one network reach each other at their fixed addresses (Machine.link_to)
    peer_link_refused = None

    def __init__(self) -> None:
        self._conn: Any = None
        self._key: tuple[str | None, str | None] | None = None
        self._lock = threading.Lock()
        #: what the image's registration by `publish` records (see :meth:`properties`)
        self._registered: dict[str, str] = {}
        self._alias: dict[str, str] = {}  # the --image alias resolved, as a run property

    def connection(self, cloud: str | None = None, region: str | None = None) -> Any:
        with self._lock:
            if self._conn is None or self._key != (cloud, region):
                self._conn, self._key = session.connect(cloud, region), (cloud, region)
            return self._conn

    def preflight(self, options: Mapping[str, str] | None = None) -> str:
        options = options or {}
        return session.preflight(options.get("os_cloud"), options.get("region"))

    def validate(self, spec: LaunchSpec) -> LaunchSpec:
        if spec.disk_size:
            raise UsageError(f"--disk-size {spec.disk_size}: openstack boots from the flavor's root "
                             "disk; choose a larger --instance-type instead")
        conn = self.connection(spec.options.get("os_cloud"), spec.options.get("region"))
        if parse_alias(spec.image) is not None and \
                retry.find(conn.image.find_image, "find image", spec.image) is None:
            # an image named debian-13 is the cloud's own; else the alias names Debian's newest
            spec, self._alias = resolve_spec("openstack", spec, str(conn.config.region_name or ""),
                                             OpenStackImages(conn))
        image = _find_image(conn, spec.image)
        self._registered = _registration(image, str(conn.config.region_name or ""))
        arch = ARCHES.get(str(image.architecture or "").lower(), spec.arch)
        props = dict(image.properties or {})
        uefi = str(props.get("hw_firmware_type", "")).lower() == "uefi" or arch is Arch.ARM64
        firmware = Firmware.UEFI if uefi else Firmware.BIOS
        if spec.firmware and spec.firmware is not firmware:
            raise ArchFirmwareError(f"--firmware {spec.firmware.value}: this image boots with "
                                    f"{firmware.value} (Glance property hw_firmware_type)")
        flavor = _flavor(conn, spec.instance_type, int(image.min_disk or 0), int(image.min_ram or 0))
        network = pick_network(conn, spec.options.get("network"))
        group, group_id, ssh_source = spec.options.get("security_group"), None, None
        if group:
            found = retry.find(conn.network.find_security_group, "find security group", group)
            if found is None:
                raise UsageError(f"--security-group {group}: no such security group")
            group_id = str(found.id)
        else:
            ssh_source = runneraddr.runner_cidr("openstack")
        settings = OpenStackSettings(
            os_cloud=spec.options.get("os_cloud"), region=spec.options.get("region"),
            cloud_name=session.cloud_name(conn), region_name=str(conn.config.region_name or ""),
            image_id=str(image.id), image_name=str(image.name or ""), flavor_id=str(flavor.id),
            shape=Shape(vcpus=int(flavor.vcpus), memory_mib=int(flavor.ram)),
            disk_gb=int(flavor.disk or 0), network_id=str(network.id),
            network_name=str(network.name or ""), zone=spec.options.get("zone"),
            security_group_id=group_id, ssh_source=ssh_source)
        return replace(spec, arch=arch, firmware=firmware, instance_type=str(flavor.name),
                       settings=settings)

    def launch(self, spec: LaunchSpec, run_dir: Path) -> Machine:
        settings = spec.settings_as(OpenStackSettings)
        conn = self.connection(settings.os_cloud, settings.region)
        run_id = spec.run_id or rundir.new_run_id()  # the record's run id must be one gc accepts
        run = resources.marks(run_id)
        name = resources.run_name(run[resources.EXPIRES_KEY])
        client_key = sshkeys.generate(f"debian-cloud-tests-{spec.run_id}")
        key_file = sshkeys.write_private(client_key, run_dir / "id_ed25519")
        injected, host_keys = None, {}
        if spec.host_key_source is HostKeySource.INJECTED:
            host = sshkeys.generate(f"root@{name}")
            host_keys = {"ed25519_private": host.private_openssh, "ed25519_public": host.public_openssh}
            injected = [host.public_openssh]
        user_data = seed.cloud_user_data(spec, client_key.public_openssh, host_keys)
        created = Created()
        # the key pair has no room for the run id: its name, which every resource shares, is kept
        rundir.record_cloud(run_dir, "openstack", cloud=session.cloud_arg(settings.os_cloud),
                            region=settings.region_name or None, name=name, run_id=run_id)
        try:
            created.keypair = name  # deleted by name: even a lost reply leaves nothing behind
            resources.create_keypair(conn, name, client_key.public_openssh)
            group = settings.security_group_id
            if not group:
                assert settings.ssh_source
                created.group_name = name  # found by name if the create's answer is lost
                group = resources.create_security_group(conn, name, settings.ssh_source, run)
                created.group_ids = [group]
            created.server_name = name
            server = retry.call(
                conn.compute.create_server, "create server", name=name,
                image_id=settings.image_id, flavor_id=settings.flavor_id,
                networks=[{"uuid": settings.network_id}], key_name=name,
                security_groups=[{"name": group}], metadata=run,
                user_data=base64.b64encode(user_data.encode()).decode(),
                **({"availability_zone": settings.zone} if settings.zone else {}))
            created.server_ids = [str(server.id)]
            server = _wait_active(conn, str(server.id), spec.boot_timeout)
            host = address_of(server, settings.network_name)
            fixed = fixed_address(server, settings.network_name)
        except BaseException as exc:
            note_cleanup_failures(exc, created.remove(conn))
            raise
        facts = _facts(spec, settings, server, name)
        props = {"openstack_cloud": settings.cloud_name, "openstack_region": settings.region_name,
                 "openstack_server_id": facts.instance_id, "openstack_flavor": spec.instance_type or "",
                 "openstack_image_id": settings.image_id}
        return OpenStackMachine(conn, created, facts, SSHEndpoint(host, 22, spec.ssh_user, key_file),
                                injected, props, (settings.network_id, group, fixed))

    def properties(self) -> dict[str, str]:
        props = session.sdk_versions()
        if self._conn is not None:
            props["openstack_cloud"] = session.cloud_name(self._conn)
            props["openstack_region"] = str(self._conn.config.region_name or "")
        return {**props, **self._registered, **self._alias}


def _registration(image: Any, region: str) -> dict[str, str]:
    """For an image `publish` uploaded: which copy this is, and the sha256 of the bytes
    uploaded for it (its property), so the gate can hold a release to runs on every copy."""
    uploaded = str((image.properties or {}).get(resources.SHA256_KEY) or "")
    if not uploaded:
        return {}
    return {Prop.REGISTERED_IMAGE: str(image.id), Prop.REGISTERED_REGION: region,
            Prop.IMAGE_SHA256: uploaded}


def _find_image(conn: Any, given: str) -> Any:
    image = retry.find(conn.image.find_image, "find image", given)
    if image is None:
        raise ImageNotFoundError(f"--image {given}: no such Glance image (name or id) visible to "
                                 "this project")
    if image.status != "active":
        raise ImageNotFoundError(f"--image {given}: the image is {image.status}, not active")
    return image


def _flavor(conn: Any, given: str | None, min_disk: int, min_ram: int) -> Any:
    """The flavor named (name or id), else the smallest that fits the image and the defaults."""
    if given:
        flavor = retry.find(conn.compute.find_flavor, "find flavor", given)
        if flavor is None:
            raise UsageError(f"--instance-type {given}: no such flavor (name or id) in this cloud")
        if flavor.ram < min_ram or (flavor.disk and flavor.disk < min_disk):
            raise UsageError(f"--instance-type {given}: the image needs {min_ram} MiB RAM and a "
                             f"{min_disk} GB disk, the flavor has {flavor.ram} MiB and {flavor.disk} GB")
        return flavor
    flavors = retry.call(lambda: list(conn.compute.flavors()), "list flavors")
    fits = [f for f in flavors if f.vcpus >= MIN_VCPUS and f.ram >= max(MIN_RAM_MIB, min_ram)
            and (not f.disk or f.disk >= min_disk) and not getattr(f, "is_disabled", False)]
    if not fits:
        raise UsageError(f"openstack: no flavor has {MIN_VCPUS} vCPU, {max(MIN_RAM_MIB, min_ram)} MiB "
                         "and the image's disk; give one with --instance-type")
    return min(fits, key=lambda f: (f.ram, f.vcpus, f.disk or 0, f.name))


def _wait_active(conn: Any, server_id: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    delay = 1.0
    while True:
        interrupts.check()  # a launch in a thread of its own stops with the run
        server = retry.call(conn.compute.get_server, "get server", server_id)
        if server.status == "ACTIVE":
            return server
        if server.status in FAILED:
            why = (server.fault or {}).get("message") if server.fault else None
            raise OpenStackError(f"openstack: server {server.name} is {server.status}: "
                                 f"{why or 'no reason given'}")
        if time.monotonic() >= deadline:
            raise OpenStackError(f"openstack: server {server.name} still {server.status} after "
                                 f"{timeout:.0f}s (waiting for ACTIVE)")
        retry.sleep(min(delay, max(deadline - time.monotonic(), 0.0)))
        delay = min(delay * 2, 15.0)


def _hostname(name: str) -> str:
    """What Nova makes of a display name for the guest's hostname."""
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63]


def _facts(spec: LaunchSpec, settings: OpenStackSettings, server: Any, name: str) -> PlatformFacts:
    disk_gb = settings.disk_gb
    config_drive = str(server.has_config_drive or "").lower() in ("true", "1")
    return PlatformFacts(
        provider="openstack", instance_id=str(server.id),
        hostname=str(getattr(server, "hostname", None) or _hostname(name)), arch=spec.arch,
        firmware=spec.firmware, datasource="ConfigDrive" if config_drive else "OpenStack",
        # Nova's metadata has no region (the guest cannot know it): the run's properties carry it
        instance_type=spec.instance_type, region=None,
        zone=str(server.availability_zone or "") or None,
        disk_size=disk_gb * 1024**3 if disk_gb else None,
        extra={**settings.shape.facts(), "image": settings.image_id, "network": settings.network_name})

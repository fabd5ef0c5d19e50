"""The gce provider: ``pytest --provider=gce --image=projects/debian-cloud/global/images/family/
debian-12 --zone=europe-west1-b`` boots the image on Compute Engine.

validate() checks the image, the zone and the machine type before anything exists; launch()
creates a firewall rule open to this runner only and one labelled instance whose metadata holds
the run's SSH key and user-data, and removes what it created if it cannot hand back a machine.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from debian_cloud_tests import interrupts, rundir, runneraddr, seed, sshkeys
from debian_cloud_tests.errors import (
    ArchFirmwareError,
    ImageNotFoundError,
    SecureBootUnavailableError,
    UsageError,
    note_cleanup_failures,
)
from debian_cloud_tests.junitprops import Prop
from debian_cloud_tests.locator.model import parse_alias
from debian_cloud_tests.locator.registry import resolve_spec
from debian_cloud_tests.machine import Machine, PlatformFacts, SSHEndpoint
from debian_cloud_tests.options import NETWORK, REGION, ZONE, Option
from debian_cloud_tests.provider import Provider
from debian_cloud_tests.spec import Arch, Firmware, HostKeySource, LaunchSpec, ProviderSettings, Shape

from . import resources, retry, session
from .errors import GceError
from .images import GceImages
from .instance import Created, GceMachine

DEFAULT_MACHINE_TYPE = {Arch.AMD64: "e2-small", Arch.ARM64: "t2a-standard-1"}
ARCHES = {"X86_64": Arch.AMD64, "ARM64": Arch.ARM64}
_IMAGE = re.compile(r"^(?:https://[^/]+/compute/v1/)?projects/(?P<project>[a-z][-a-z0-9.:]*)/global/"
                    r"images/(?:family/(?P<family>[a-z][-a-z0-9]*)|(?P<name>[a-z][-a-z0-9]*))$")
_ZONE = re.compile(r"^[a-z]+-[a-z]+\d+-[a-z]$")
_DISK = re.compile(r"^(\+)?(\d+)G$", re.I)


@dataclass(frozen=True)
class GceSettings(ProviderSettings):
    zone: str
    image_link: str
    shape: Shape
    network: str
    ssh_source: str
    disk_gb: int | None  # None: the image's size


class GceProvider(Provider):
    name = "gce"
    secure_boot_refused = None  # a Shielded VM's shieldedInstanceConfig.enableSecureBoot
    options = (Option("machine-type", "the machine type, GCE's name for --instance-type",
                      instance_type_alias=True), ZONE, NETWORK)
    scope_options = (Option("project", "the project (default: from the credentials or "
                            "GOOGLE_CLOUD_PROJECT)"), REGION)
    #: each launch makes its own firewall rule and instance, both named for it; the clients are
    #: made once, under the lock
    concurrent_launches = True
    #: two instances on one VPC network: a firewall rule opens the port between their internal
    #: addresses (GceMachine.link_to)
    peer_link_refused = None

    def __init__(self, project: str | None = None, credentials: Any = None,
                 endpoint: str | None = None) -> None:
        self._args = (project, credentials, endpoint)
        self._clients: session.Clients | None = None
        self._lock = threading.Lock()
        self._alias: dict[str, str] = {}  # the --image alias resolved, as a run property
        self._registered: dict[str, str] = {}  # the image `publish` uploaded, as run properties

    def clients(self) -> session.Clients:
        with self._lock:
            if self._clients is None:
                self._clients = session.make_clients(*self._args)
            return self._clients

    def validate(self, spec: LaunchSpec) -> LaunchSpec:
        if parse_alias(spec.image) is not None:
            spec, self._alias = resolve_spec("gce", spec, None, GceImages(self.clients()))
        m = _IMAGE.match(spec.image)
        if not m:
            raise UsageError(f"--image {spec.image!r}: for gce give projects/PROJECT/global/images/NAME, "
                             "projects/PROJECT/global/images/family/FAMILY or an alias (debian-13)")
        zone = spec.options.get("zone")
        if not zone or not _ZONE.match(zone):
            raise UsageError(f"gce: --zone {zone or ''} : give a zone such as europe-west1-b")
        c = self.clients()
        image = _get_image(c, m["project"], m["family"], m["name"], spec.image)
        self._registered = _registration(image, m["project"])
        arch = ARCHES.get(image.architecture or "", spec.arch)
        features = {f.type_ for f in image.guest_os_features}
        firmware = Firmware.UEFI if "UEFI_COMPATIBLE" in features or arch is Arch.ARM64 else Firmware.BIOS
        if spec.secure_boot and firmware is not Firmware.UEFI:
            raise SecureBootUnavailableError(f"--secure-boot: GCE boots {spec.image} with BIOS (the "
                                             "image lacks the UEFI_COMPATIBLE guest OS feature); a "
                                             "Shielded VM's Secure Boot needs a UEFI image")
        if spec.firmware and spec.firmware is not firmware:
            raise ArchFirmwareError(f"--firmware {spec.firmware.value}: GCE boots this image with "
                                    f"{firmware.value}")
        machine_type = spec.instance_type or DEFAULT_MACHINE_TYPE[arch]
        shape = _machine_type(c, zone, machine_type)
        settings = GceSettings(
            zone=zone, image_link=image.self_link or f"projects/{m['project']}/global/images/{image.name}",
            shape=shape, network=spec.options.get("network") or "default",
            ssh_source=runneraddr.runner_cidr("gce"),
            disk_gb=_disk_gb(spec.disk_size, int(image.disk_size_gb or 0)) if spec.disk_size else None)
        return replace(spec, arch=arch, firmware=firmware, instance_type=machine_type,
                       settings=settings)

    def launch(self, spec: LaunchSpec, run_dir: Path) -> Machine:
        c = self.clients()
        settings = spec.settings_as(GceSettings)
        zone = settings.zone
        name = f"dct-{uuid.uuid4().hex[:12]}"
        client_key = sshkeys.generate(f"debian-cloud-tests-{spec.run_id}")
        key_file = sshkeys.write_private(client_key, run_dir / "id_ed25519")
        injected = None
        host_keys: dict[str, str] = {}
        if spec.host_key_source is HostKeySource.INJECTED:
            host = sshkeys.generate(f"root@{name}")
            host_keys = {"ed25519_private": host.private_openssh, "ed25519_public": host.public_openssh}
            injected = [host.public_openssh]
        run_id = spec.run_id or rundir.new_run_id()  # the record's run id must be one gc accepts
        marks = resources.labels(run_id)
        created = Created(zone=zone, run_id=run_id)
        network = settings.network
        network_link = network if "/" in network else f"global/networks/{network}"
        rundir.record_cloud(run_dir, "gce", project=c.project,
                            endpoint=session.api_endpoint(self._args[2]), run_id=run_id)
        try:
            created.firewall = name
            resources.create_firewall(c, name, network_link, settings.ssh_source, marks)
            created.instance = name
            body = _instance_body(spec, settings, name, network_link, marks,
                                  f"{spec.ssh_user}:{client_key.public_openssh}",
                                  seed.cloud_user_data(spec, client_key.public_openssh, host_keys))
            op = retry.call(c.instances.insert_unary, "instances.insert", project=c.project,
                            zone=zone, instance_resource=body)
            retry.wait_operation(lambda: c.zone_operations.get(project=c.project, zone=zone,
                                                               operation=op.name),
                                 "instances.insert", spec.boot_timeout)
            inst = _wait_running(c, zone, name, spec.boot_timeout)
        except BaseException as exc:
            _undo(c, created, exc)
            raise
        nic = inst.network_interfaces[0]
        nat = nic.access_configs[0].nat_i_p
        facts = PlatformFacts(
            provider="gce", instance_id=str(inst.id), hostname=name, arch=spec.arch,
            firmware=spec.firmware, datasource="GCE", instance_type=spec.instance_type,
            region=zone.rsplit("-", 1)[0], zone=zone,
            disk_size=settings.disk_gb * 1024**3 if settings.disk_gb else None,
            extra={**settings.shape.facts(), "image": spec.image, "public_ip": nat})
        props = {"gce_project": c.project, "gce_zone": zone, "gce_instance": name,
                 "gce_instance_id": facts.instance_id, "gce_machine_type": spec.instance_type or ""}
        return GceMachine(c, created, facts, SSHEndpoint(nat, 22, spec.ssh_user, key_file),
                          injected, props, (nic.network or network_link, nic.network_i_p))

    def preflight(self, options: Mapping[str, str] | None = None) -> str:
        return session.preflight(self._args[0])

    def properties(self) -> dict[str, str]:
        props = session.sdk_versions()
        if self._clients is not None:
            props["gce_project"] = self._clients.project
        return {**props, **self._alias, **self._registered}


def _get_image(c: session.Clients, project: str, family: str | None, name: str | None,
               given: str) -> Any:
    try:
        if family:
            image = retry.call(c.images.get_from_family, "images.getFromFamily", project=project,
                               family=family)
        else:
            image = retry.call(c.images.get, "images.get", project=project, image=name)
    except GceError as exc:
        if exc.reason != "notFound":
            raise
        raise ImageNotFoundError(f"--image {given}: no such image (or not readable by these "
                                 "credentials)") from None
    if image.status and image.status != "READY":
        raise ImageNotFoundError(f"--image {given}: the image is {image.status}, not READY")
    return image


def _registration(image: Any, project: str) -> dict[str, str]:
    """For an image `publish` uploaded: which one this is (as publish names it, in its one
    region, ``global``) and the sha256 of the bytes uploaded for it (in its description), so the
    gate can hold a release to runs on it."""
    uploaded = resources.uploaded_sha256(image.description or "")
    if not uploaded:
        return {}
    return {Prop.REGISTERED_IMAGE: f"projects/{project}/global/images/{image.name}",
            Prop.REGISTERED_REGION: "global", Prop.IMAGE_SHA256: uploaded}


def _machine_type(c: session.Clients, zone: str, machine_type: str) -> Shape:
    try:
        found = retry.call(c.machine_types.get, "machineTypes.get", project=c.project, zone=zone,
                           machine_type=machine_type)
    except GceError as exc:
        if exc.reason != "notFound":
            raise
        raise UsageError(f"--instance-type {machine_type}: no such machine type in {zone} "
                         "(or no such zone)") from None
    return Shape(vcpus=int(found.guest_cpus), memory_mib=int(found.memory_mb))


def _disk_gb(disk_size: str, base: int) -> int:
    m = _DISK.match(disk_size.strip())
    if not m:
        raise UsageError(f"--disk-size {disk_size!r}: give whole GB, e.g. 20G or +10G")
    size = base + int(m[2]) if m[1] else int(m[2])
    if size < base:
        raise UsageError(f"--disk-size {disk_size}: smaller than the image ({base} GB)")
    return size


def _instance_body(spec: LaunchSpec, settings: GceSettings, name: str, network: str,
                   marks: dict[str, str], ssh_keys: str, user_data: str) -> Any:
    from google.cloud import compute_v1

    zone = settings.zone
    params = compute_v1.AttachedDiskInitializeParams(source_image=settings.image_link, labels=marks)
    if settings.disk_gb:
        params.disk_size_gb = settings.disk_gb
    metadata = {"ssh-keys": ssh_keys, "user-data": user_data, "block-project-ssh-keys": "true"}
    shielded = ({"shielded_instance_config": compute_v1.ShieldedInstanceConfig(enable_secure_boot=True)}
                if spec.secure_boot else {})
    return compute_v1.Instance(
        **shielded,
        name=name, machine_type=f"zones/{zone}/machineTypes/{spec.instance_type}", labels=marks,
        tags=compute_v1.Tags(items=[name]),
        disks=[compute_v1.AttachedDisk(boot=True, auto_delete=True, initialize_params=params)],
        network_interfaces=[compute_v1.NetworkInterface(network=network, access_configs=[
            compute_v1.AccessConfig(type_="ONE_TO_ONE_NAT", name="External NAT")])],
        metadata=compute_v1.Metadata(items=[compute_v1.Items(key=k, value=v) for k, v in metadata.items()]))


def _wait_running(c: session.Clients, zone: str, name: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    delay = 1.0
    while True:
        interrupts.check()  # a launch in a thread of its own stops with the run
        inst = resources.get_instance(c, zone, name)
        if inst.status == "RUNNING":
            return inst
        if inst.status in ("STOPPING", "STOPPED", "TERMINATED"):
            why = inst.status_message or "no reason given"
            raise GceError(f"gce: instance {name} is {inst.status}: {why}")
        if time.monotonic() >= deadline:
            raise GceError(f"gce: instance {name} still {inst.status} after {timeout:.0f}s "
                           "(waiting for RUNNING)")
        retry.sleep(min(delay, max(deadline - time.monotonic(), 0.0)))
        delay = min(delay * 2, 15.0)


def _undo(c: session.Clients, created: Created, exc: BaseException) -> None:
    """Remove what a failed launch created; say what could not be removed."""
    note_cleanup_failures(exc, created.remove(c))

"""The azure provider: ``pytest --provider=azure --image=Debian:debian-12:12-gen2:latest
--region=westeurope`` boots the image on Azure.

Each run gets a resource group of its own, tagged with the run id and an expiry, holding a
network security group (SSH from this runner only), a virtual network, a public address, a NIC
and the VM with boot diagnostics on; destroying the machine deletes the group as a whole.  A
launch meant for a peer link gets an address space of its own, so that two can be peered
(:mod:`.peerlink`).
"""

from __future__ import annotations

import base64
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from debian_cloud_tests import expiry, rundir, runneraddr, seed, sshkeys
from debian_cloud_tests.errors import (
    ArchFirmwareError,
    DCTError,
    ImageNotFoundError,
    SecureBootUnavailableError,
    UsageError,
    note_cleanup_failures,
)
from debian_cloud_tests.junitprops import Prop
from debian_cloud_tests.locator.model import parse_alias
from debian_cloud_tests.locator.registry import resolve_spec
from debian_cloud_tests.machine import Machine, PlatformFacts, SSHEndpoint
from debian_cloud_tests.options import REGION, Option
from debian_cloud_tests.provider import Provider
from debian_cloud_tests.spec import Arch, Firmware, HostKeySource, LaunchSpec, ProviderSettings

from . import errors, peerlink, session
from .images import AzureImages, sku_for
from .machine import AzureMachine, delete_group

RUN_ID_TAG, EXPIRES_TAG = "dct-run-id", "dct-expires"
#: on a managed image or gallery image version `publish` made: the sha256 of the raw bytes uploaded for it
SHA256_TAG = "dct-uploaded-sha256"
DEFAULT_SIZE = {Arch.AMD64: "Standard_B2s", Arch.ARM64: "Standard_B2ps_v2"}
_URN = re.compile(r"^(?P<pub>[^:/\s]+):(?P<offer>[^:/\s]+):(?P<sku>[^:/\s]+):(?P<version>[^:/\s]+)$")
_ID = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<group>[^/]+)/providers/"
                 r"Microsoft\.Compute/(?:images/(?P<image>[^/]+)|galleries/(?P<gallery>[^/]+)/images/"
                 r"(?P<definition>[^/]+)/versions/(?P<version>[^/]+))$", re.I)


@dataclass(frozen=True)
class AzureSettings(ProviderSettings):
    location: str
    ssh_source: str


class AzureProvider(Provider):
    name = "azure"
    secure_boot_refused = None  # Trusted Launch: securityProfile.uefiSettings.secureBootEnabled
    options = (REGION,)
    scope_options = (REGION, Option("subscription", "the subscription (default: "
                                    "AZURE_SUBSCRIPTION_ID)"))
    #: each launch makes its own resource group, and everything of its machine inside it; the
    #: clients are made once, under the lock
    concurrent_launches = True
    #: two VMs' networks are peered and their NSGs opened to each other (:mod:`.peerlink`)
    peer_link_refused = None

    def __init__(self, credential: Any = None, subscription: str | None = None,
                 **client_kwargs: Any) -> None:
        self._args = (credential, subscription, client_kwargs)
        self._clients: session.Clients | None = None
        self._lock = threading.Lock()
        self._alias: dict[str, str] = {}  # the --image alias resolved, as a run property
        #: what the image's registration by `publish` records (see :meth:`properties`)
        self._registered: dict[str, str] = {}
        #: the address spaces of launches meant for a peer link, each its own
        self._spaces = peerlink.Spaces()

    def clients(self) -> session.Clients:
        with self._lock:
            if self._clients is None:
                credential, subscription, kwargs = self._args
                self._clients = session.make_clients(credential, subscription, **kwargs)
            return self._clients

    def preflight(self, options: Mapping[str, str] | None = None) -> str:
        return session.preflight(self._args[1])

    def properties(self) -> dict[str, str]:
        """The alias resolved, and for a managed image or gallery image version `publish` made
        (it carries the sha256 tag) which image and location (the run's --region) this run tested
        and the sha256 of the bytes uploaded for it."""
        return {**self._registered, **self._alias}

    def validate(self, spec: LaunchSpec) -> LaunchSpec:
        location = spec.options.get("region")
        if not location:
            raise UsageError("azure: give --region, the location (e.g. westeurope)")
        alias = parse_alias(spec.image)
        if alias is not None:
            arch = alias.arch or spec.arch.value
            sku = sku_for(alias.version, arch, spec.firmware is Firmware.BIOS)
            spec, self._alias = resolve_spec("azure", spec, location, AzureImages(self.clients()),
                                             only=lambda image: image.id.split(":")[2] == sku)
        urn, is_id = _URN.match(spec.image), _ID.match(spec.image)
        if not urn and not is_id:
            raise UsageError(f"--image {spec.image!r}: for azure give a URN (Debian:debian-12:12-gen2:"
                             "latest), a gallery image version id, a managed image id or an alias "
                             "(debian-13)")
        if urn:
            arch, firmware = self._marketplace(location, urn, spec)
        elif is_id and is_id["gallery"]:
            arch, firmware = self._gallery(location, is_id, spec)
        else:
            assert is_id is not None
            arch, firmware = self._managed(location, is_id, spec)
        if spec.secure_boot and firmware is not Firmware.UEFI:
            raise SecureBootUnavailableError(f"--secure-boot: {spec.image} is a Hyper-V generation 1 "
                                             "image, which boots with BIOS on Azure; Trusted Launch "
                                             "with Secure Boot needs a generation 2 image (12-gen2)")
        if spec.firmware and spec.firmware is not firmware:
            raise ArchFirmwareError(f"--firmware {spec.firmware.value}: this image boots with "
                                    f"{firmware.value} on Azure")
        settings = AzureSettings(location=location,
                                 ssh_source=runneraddr.runner_cidr("azure", error=errors.AzureError))
        return replace(spec, arch=arch, firmware=firmware, settings=settings,
                       instance_type=spec.instance_type or DEFAULT_SIZE[arch])

    def _marketplace(self, location: str, urn: re.Match[str], spec: LaunchSpec) -> tuple[Arch, Firmware]:
        images = self.clients().compute.virtual_machine_images
        pub, offer, sku, version = urn["pub"], urn["offer"], urn["sku"], urn["version"]
        try:
            if version == "latest":
                found = errors.call(images.list, "virtual_machine_images.list", location, pub, offer, sku)
                if not found:
                    raise ImageNotFoundError(f"--image {spec.image}: no version in {location}")
                version = found[-1].name
            image = errors.call(images.get, "virtual_machine_images.get", location, pub, offer, sku, version)
        except DCTError as exc:
            if "NotFound" not in exc.message:
                raise
            raise ImageNotFoundError(f"--image {spec.image}: no such image in {location}") from None
        arch = Arch.ARM64 if text_of(image.architecture).lower() == "arm64" else Arch.AMD64
        return arch, Firmware.UEFI if text_of(image.hyper_v_generation) == "V2" else Firmware.BIOS

    def _gallery(self, location: str, m: re.Match[str], spec: LaunchSpec) -> tuple[Arch, Firmware]:
        """A gallery image version: it must exist and be replicated to *location*; its image
        definition says the architecture and the Hyper-V generation (V2: UEFI)."""
        compute = self.clients().compute_in(m["sub"])
        where = (m["group"], m["gallery"], m["definition"])
        version = _found(lambda: errors.call(compute.gallery_image_versions.get,
                                             "gallery_image_versions.get", *where, m["version"]),
                         f"--image {spec.image}: no such gallery image version (or not readable by "
                         "these credentials)")
        regions = model_attr(model_attr(version, "publishing_profile"), "target_regions") or []
        names = {location_key(model_attr(r, "name")) for r in regions}
        if names and location_key(location) not in names:
            raise ImageNotFoundError(f"--image {spec.image}: this version is not replicated to "
                                     f"{location} (only {', '.join(sorted(names))})")
        uploaded = str((model_attr(version, "tags") or {}).get(SHA256_TAG) or "")
        if uploaded:
            self._registered = {Prop.REGISTERED_IMAGE: spec.image, Prop.REGISTERED_REGION: location,
                                Prop.IMAGE_SHA256: uploaded}
        definition = _found(lambda: errors.call(compute.gallery_images.get, "gallery_images.get", *where),
                            f"--image {spec.image}: no such gallery image definition {m['definition']}")
        arm64 = text_of(model_attr(definition, "architecture")).lower() == "arm64"
        arch = Arch.ARM64 if arm64 else Arch.AMD64
        return arch, _generation(model_attr(definition, "hyper_v_generation"))

    def _managed(self, location: str, m: re.Match[str], spec: LaunchSpec) -> tuple[Arch, Firmware]:
        """A managed image: it must exist in *location* (managed images are regional); it says
        its Hyper-V generation, not its architecture (--arch, else the image name, decides)."""
        compute = self.clients().compute_in(m["sub"])
        image = _found(lambda: errors.call(compute.images.get, "images.get", m["group"], m["image"]),
                       f"--image {spec.image}: no such managed image (or not readable by these "
                       "credentials)")
        if image.location and location_key(image.location) != location_key(location):
            raise ImageNotFoundError(f"--image {spec.image}: the managed image is in {image.location}, "
                                     f"not --region {location}; copy it or run there")
        uploaded = str((image.tags or {}).get(SHA256_TAG) or "")
        if uploaded:
            self._registered = {Prop.REGISTERED_IMAGE: spec.image, Prop.REGISTERED_REGION: location,
                                Prop.IMAGE_SHA256: uploaded}
        return spec.arch, _generation(model_attr(image, "hyper_v_generation"))

    def launch(self, spec: LaunchSpec, run_dir: Path) -> Machine:
        c = self.clients()
        settings = spec.settings_as(AzureSettings)
        location = settings.location
        short = uuid.uuid4().hex[:8]
        run_id = spec.run_id or rundir.new_run_id()  # the record's run id must be one gc accepts
        group = name = f"dct-{run_id}-{short}"
        key = sshkeys.generate(f"debian-cloud-tests-{spec.run_id}")
        key_file = sshkeys.write_private(key, run_dir / "id_ed25519")
        host_keys: dict[str, str] = {}
        injected = None
        if spec.host_key_source is HostKeySource.INJECTED:
            host = sshkeys.generate(f"root@{name}")
            host_keys = {"ed25519_private": host.private_openssh, "ed25519_public": host.public_openssh}
            injected = [host.public_openssh]
        expires = expiry.mark()
        tags = {RUN_ID_TAG: run_id, EXPIRES_TAG: expires}
        user_data = seed.cloud_user_data(spec, key.public_openssh, host_keys)
        rundir.record_cloud(run_dir, "azure", subscription=c.subscription,
                            endpoint=session.arm_endpoint(self._args[2].get("base_url")), run_id=run_id)
        space = self._spaces.pick() if spec.peer_network else (peerlink.DEFAULT_SPACE,
                                                                peerlink.DEFAULT_SUBNET)
        try:
            errors.call(c.resource.resource_groups.create_or_update, "resource_groups.create", group,
                        {"location": location, "tags": tags})
            vm, ip, network = _create(c, spec, settings, group, name, tags, key.public_openssh,
                                      user_data, space)
        except BaseException as exc:
            note_cleanup_failures(exc, delete_group(c, group))
            raise
        facts = PlatformFacts(provider="azure", instance_id=str(model_attr(vm, "vm_id")), hostname=name,
                              arch=spec.arch,
                              firmware=spec.firmware, datasource="Azure", instance_type=spec.instance_type,
                              region=location, extra={"image": spec.image, "public_ip": ip})
        props = {"azure_location": location, "azure_resource_group": group, "azure_vm_id": facts.instance_id,
                 "azure_vm_size": spec.instance_type or ""}
        return AzureMachine(c, group, name, facts, SSHEndpoint(ip, 22, spec.ssh_user, key_file),
                            injected, props, network)


def _found(get: Callable[[], Any], missing: str) -> Any:
    """What *get* returns; ARM's "not found" (any ``*NotFound`` code) becomes *missing*, one line."""
    try:
        return get()
    except errors.AzureError as exc:
        if "NotFound" not in exc.code:
            raise
        raise ImageNotFoundError(missing) from None


def location_key(name: object) -> str:
    """A location as ARM compares them: "West Europe" is westeurope."""
    return str(name or "").replace(" ", "").lower()


def _trusted_launch(spec: LaunchSpec) -> dict[str, Any]:
    """--secure-boot as Azure takes it: Trusted Launch with Secure Boot (and the vTPM it comes
    with) on; nothing otherwise, so a plain launch is what it was."""
    if not spec.secure_boot:
        return {}
    return {"securityProfile": {"securityType": "TrustedLaunch", "uefiSettings": {
        "secureBootEnabled": True, "vTpmEnabled": True}}}


def _generation(value: Any) -> Firmware:
    """Hyper-V generation V2 boots with UEFI, V1 (Azure's default when unset) with BIOS."""
    return Firmware.UEFI if text_of(value).upper() == "V2" else Firmware.BIOS


def model_attr(model: Any, name: str) -> Any:
    """An attribute of an SDK model, flattened (msrest models) or under ``properties``."""
    if hasattr(model, name) and getattr(model, name) is not None:
        return getattr(model, name)
    return getattr(getattr(model, "properties", None), name, None)


def text_of(value: Any) -> str:
    """An SDK enum or a plain string, as the string ARM sent."""
    return str(getattr(value, "value", value) or "")


def _create(c: session.Clients, spec: LaunchSpec, settings: AzureSettings, group: str, name: str,
            tags: dict[str, str], public_key: str, user_data: str,
            space: tuple[str, str]) -> tuple[Any, str, peerlink.Network]:
    """NSG, network (*space*: its address space and its subnet's), address, NIC and VM, each
    waited for; returns the VM, its public address and where it is in its network."""
    loc, net = settings.location, c.network

    def make(fn: Any, what: str, *args: Any, timeout: float = 600.0) -> Any:
        return errors.operation(fn, what, *args, timeout=timeout, interruptible=True)

    rule = {"name": "ssh-from-runner", "properties": {
        "protocol": "Tcp", "direction": "Inbound", "access": "Allow", "priority": 100,
        "sourceAddressPrefix": settings.ssh_source, "sourcePortRange": "*",
        "destinationAddressPrefix": "*", "destinationPortRange": "22"}}
    base = {"location": loc, "tags": tags}
    nsg = make(net.network_security_groups.begin_create_or_update, "network_security_groups.create",
               group, name, {**base, "properties": {"securityRules": [rule]}})
    vnet = make(net.virtual_networks.begin_create_or_update, "virtual_networks.create", group, name,
                {**base, "properties": {"addressSpace": {"addressPrefixes": [space[0]]}, "subnets": [
                    {"name": "default", "properties": {"addressPrefix": space[1],
                                                       "networkSecurityGroup": {"id": nsg.id}}}]}})
    pip = make(net.public_ip_addresses.begin_create_or_update, "public_ip_addresses.create", group, name,
               {**base, "sku": {"name": "Standard"}, "properties": {"publicIPAllocationMethod": "Static"}})
    nic = make(net.network_interfaces.begin_create_or_update, "network_interfaces.create", group, name,
               {**base, "properties": {"ipConfigurations": [{"name": "ipconfig", "properties": {
                   "subnet": {"id": f"{vnet.id}/subnets/default"}, "publicIPAddress": {"id": pip.id}}}]}})
    urn = _URN.match(spec.image)
    image = ({"publisher": urn["pub"], "offer": urn["offer"], "sku": urn["sku"], "version": urn["version"]}
             if urn else {"id": spec.image})
    ssh_key = {"path": f"/home/{spec.ssh_user}/.ssh/authorized_keys", "keyData": public_key}
    vm = make(c.compute.virtual_machines.begin_create_or_update, "virtual_machines.create", group, name, {
        **base, "properties": {
            "hardwareProfile": {"vmSize": spec.instance_type},
            "storageProfile": {"imageReference": image, "osDisk": {"createOption": "FromImage",
                                                                    "deleteOption": "Delete"}},
            "osProfile": {"computerName": name, "adminUsername": spec.ssh_user,
                          "customData": base64.b64encode(user_data.encode()).decode(),
                          "linuxConfiguration": {"disablePasswordAuthentication": True,
                                                 "ssh": {"publicKeys": [ssh_key]}}},
            "networkProfile": {"networkInterfaces": [
                {"id": nic.id, "properties": {"deleteOption": "Delete"}}]},
            "diagnosticsProfile": {"bootDiagnostics": {"enabled": True}}, **_trusted_launch(spec)}},
        timeout=spec.boot_timeout)
    address = errors.call(net.public_ip_addresses.get, "public_ip_addresses.get", group, name)
    ip = model_attr(address, "ip_address")
    private = model_attr((model_attr(nic, "ip_configurations") or [None])[0], "private_ip_address")
    return vm, str(ip), peerlink.Network(str(vnet.id), space[0], str(private or ""))

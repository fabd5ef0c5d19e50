"""The AWS provider: ``pytest --provider=aws --image=ami-…`` boots the AMI on EC2.

validate() checks everything it can before a single resource exists (credentials, region, the
AMI, the instance type, subnet and group); launch() creates a key pair, a security group open to
this runner only, and one instance with IMDSv2 required, all tagged, and removes whatever it
created if it cannot hand back a running machine.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from debian_cloud_tests import rundir, runneraddr, seed, sshkeys
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
from debian_cloud_tests.options import REGION, SECURITY_GROUP, SUBNET
from debian_cloud_tests.provider import Provider
from debian_cloud_tests.spec import Arch, Firmware, HostKeySource, LaunchSpec, ProviderSettings, Shape

from . import resources, retry, session
from .errors import AwsError
from .images import AwsImages
from .instance import AwsMachine, Created
from .resources import SHA256_TAG

DEFAULT_INSTANCE_TYPE = {Arch.AMD64: "t3.small", Arch.ARM64: "t4g.small"}
ARCHES = {"x86_64": Arch.AMD64, "arm64": Arch.ARM64}
BOOT_MODES = {"legacy-bios": Firmware.BIOS, "uefi": Firmware.UEFI}
_AMI = re.compile(r"^ami-[0-9a-f]{8,17}$")
_DISK = re.compile(r"^(\+)?(\d+)G$", re.I)


@dataclass(frozen=True)
class AwsSettings(ProviderSettings):
    region: str
    shape: Shape
    subnet: str | None
    #: the user's group; None: the run makes one in vpc_id, open to ssh_source only
    security_group: str | None
    vpc_id: str | None
    ssh_source: str | None
    #: the root device and its size in GiB, when --disk-size is given
    root_volume: tuple[str, int] | None


class AwsProvider(Provider):
    name = "aws"
    secure_boot_refused = ("on EC2 Secure Boot comes with the AMI (registered with UEFI variables "
                           "holding the keys, register-image --uefi-data), not with a launch")
    options = (REGION, SUBNET, SECURITY_GROUP)
    scope_options = (REGION,)
    #: each launch makes its own key pair, group and instance, all named for it; a boto3 client
    #: is thread-safe, the session that makes it is not (made under the lock)
    concurrent_launches = True
    peer_link_refused = None

    def __init__(self) -> None:
        self._session: Any = None
        self._ec2: Any = None
        self._lock = threading.Lock()
        #: what the image's registration by `publish` records (see :meth:`properties`)
        self._registered: dict[str, str] = {}

    def _client(self, region: str | None) -> tuple[Any, str]:
        """The EC2 client for *region* (else the configured one), and that region's name."""
        with self._lock:
            if self._ec2 is None or (region and self._session.region_name != region):
                self._session = session.new_session(region)
                self._ec2 = session.ec2_client(self._session)
            return self._ec2, str(self._session.region_name)

    def validate(self, spec: LaunchSpec) -> LaunchSpec:
        if not _AMI.match(spec.image) and parse_alias(spec.image) is None:
            raise UsageError(f"--image {spec.image!r}: for aws give an AMI id "
                             "(ami-0123456789abcdef0) or an alias (debian-13, debian-12-arm64)")
        ec2, region = self._client(spec.options.get("region"))
        spec, alias = resolve_spec("aws", spec, region, AwsImages())
        image = _describe_image(ec2, spec.image, region)
        self._registered = {**_registration(image, spec.image, region), **alias}
        arch = ARCHES.get(image.get("Architecture", ""), spec.arch)
        if image.get("Architecture") and image["Architecture"] not in ARCHES:
            raise ArchFirmwareError(f"--image {spec.image}: architecture {image['Architecture']} "
                                    "is not one Debian publishes (x86_64, arm64)")
        firmware = _firmware(spec, image.get("BootMode", ""), arch)
        instance_type = spec.instance_type or DEFAULT_INSTANCE_TYPE[arch]
        shape = _instance_type(ec2, instance_type, image.get("Architecture"))
        subnet, group = spec.options.get("subnet"), spec.options.get("security_group")
        vpc = resources.subnet_vpc(ec2, subnet) if subnet else None
        ssh_source = None
        if group:
            group_vpc = resources.group_vpc(ec2, group)
            if vpc and group_vpc and group_vpc != vpc:
                raise UsageError(f"--security-group {group} is in {group_vpc}, --subnet {subnet} in {vpc}")
        else:
            vpc = vpc or resources.default_vpc(ec2, region)
            ssh_source = runneraddr.runner_cidr("aws", "DCT_AWS_SOURCE_ADDRESS", "DCT_AWS_CHECKIP_URL")
        settings = AwsSettings(region=region, shape=shape, subnet=subnet, security_group=group,
                               vpc_id=vpc, ssh_source=ssh_source,
                               root_volume=_root_volume(image, spec.disk_size))
        return replace(spec, arch=arch, firmware=firmware, instance_type=instance_type,
                       settings=settings)

    def launch(self, spec: LaunchSpec, run_dir: Path) -> Machine:
        settings = spec.settings_as(AwsSettings)
        ec2, region = self._client(settings.region)
        short = uuid.uuid4().hex[:8]
        run_id = spec.run_id or rundir.new_run_id()  # the record's run id must be one gc accepts
        name = f"dct-{run_id}-{short}"
        client_key = sshkeys.generate(f"debian-cloud-tests-{spec.run_id}")
        key_file = sshkeys.write_private(client_key, run_dir / "id_ed25519")
        host_keys, injected = _host_keys(spec, name)
        user_data = seed.cloud_user_data(spec, client_key.public_openssh, host_keys)
        tag_list = resources.tags(run_id, name)
        created = Created(region=region, run_id=run_id)
        rundir.record_cloud(run_dir, "aws", region=region, run_id=run_id)
        try:
            created.key_name = name  # deleted by name: even a lost reply leaves nothing behind
            created.key_id = resources.import_key(ec2, name, client_key.public_openssh, tag_list)
            group = settings.security_group
            if not group:
                assert settings.vpc_id and settings.ssh_source
                created.group_name = name  # found by name if the reply is lost, as for the key
                group = created.group_id = resources.create_group(
                    ec2, name, settings.vpc_id, settings.ssh_source, tag_list)
            created.launching = name
            created.instance_id = _run_instance(ec2, spec, settings, name, group, user_data, tag_list)
            desc = resources.wait_state(ec2, created.instance_id, {"running"}, spec.boot_timeout,
                                        bad=frozenset({"shutting-down", "terminated", "stopped"}),
                                        interruptible=True)
            if not desc.get("PublicIpAddress"):
                raise AwsError(f"aws: instance {created.instance_id} has no public address; give a "
                               "--subnet whose network routes to an internet gateway")
        except BaseException as exc:
            _undo(ec2, created, exc)
            raise
        facts = _facts(spec, settings, desc, region)
        endpoint = SSHEndpoint(desc["PublicIpAddress"], 22, spec.ssh_user, key_file)
        props = {"aws_region": region, "aws_zone": facts.zone or "", "aws_instance_id": facts.instance_id,
                 "aws_instance_type": facts.instance_type or ""}
        network = (desc.get("VpcId", ""), group, desc.get("PrivateIpAddress", ""))
        return AwsMachine(ec2, created, facts, endpoint, injected, props, network)

    def preflight(self, options: Mapping[str, str] | None = None) -> str:
        return session.preflight((options or {}).get("region"))

    def properties(self) -> dict[str, str]:
        props = session.sdk_versions()
        if self._session is not None:
            props["aws_region"] = self._session.region_name
        return {**props, **self._registered}


def _registration(image: dict[str, Any], ami: str, region: str) -> dict[str, str]:
    """For an AMI `publish` registered: which copy this is, and the sha256 of the bytes
    uploaded for it (its tag), so the gate can hold a release to runs on every copy."""
    tags = {t.get("Key"): t.get("Value", "") for t in image.get("Tags", [])}
    uploaded = tags.get(SHA256_TAG, "")
    if not uploaded:
        return {}
    return {Prop.REGISTERED_IMAGE: ami, Prop.REGISTERED_REGION: region, Prop.IMAGE_SHA256: uploaded}


def _describe_image(ec2: Any, ami: str, region: str) -> dict[str, Any]:
    """The AMI, which must exist and be available (run_instances alone would say so too late)."""
    try:
        images = retry.call(ec2.describe_images, "describe_images", ImageIds=[ami])["Images"]
    except AwsError as exc:
        if not exc.code.startswith("InvalidAMIID"):
            raise
        images = []
    if not images:
        raise ImageNotFoundError(f"--image {ami}: no such AMI in {region} (or not shared with this "
                                 "account); AMIs are per region: check --region")
    if images[0].get("State", "available") != "available":
        raise ImageNotFoundError(f"--image {ami}: the AMI is {images[0]['State']}, not available")
    return dict(images[0])


def _firmware(spec: LaunchSpec, boot_mode: str, arch: Arch) -> Firmware:
    """The AMI's boot mode decides (unset: BIOS on x86_64, UEFI on arm64, as EC2 boots them);
    --firmware may only agree with it."""
    fixed = BOOT_MODES.get(boot_mode)
    if fixed is None:
        fixed = Firmware.UEFI if arch is Arch.ARM64 or boot_mode == "uefi-preferred" else Firmware.BIOS
    if spec.firmware and spec.firmware is not fixed:
        raise ArchFirmwareError(f"--firmware {spec.firmware.value}: EC2 boots this AMI with "
                                f"{fixed.value} (boot mode {boot_mode or 'unset'})")
    if arch is Arch.ARM64 and fixed is Firmware.BIOS:
        raise ArchFirmwareError("arm64 instances boot with UEFI only")
    return fixed


def _instance_type(ec2: Any, instance_type: str, ami_arch: str | None) -> Shape:
    """vCPUs and memory of the type, after checking it exists and runs the AMI's arch."""
    try:
        found = retry.call(ec2.describe_instance_types, "describe_instance_types",
                           InstanceTypes=[instance_type])["InstanceTypes"]
    except AwsError as exc:
        if exc.code.startswith("InvalidInstanceType"):
            raise UsageError(f"--instance-type {instance_type}: no such EC2 instance type") from None
        if exc.code == "UnauthorizedOperation":
            return Shape()
        raise
    if not found:
        raise UsageError(f"--instance-type {instance_type}: no such EC2 instance type")
    archs = found[0].get("ProcessorInfo", {}).get("SupportedArchitectures", [])
    if ami_arch and archs and ami_arch not in archs:
        raise ArchFirmwareError(f"--instance-type {instance_type} runs {'/'.join(archs)}, "
                                f"the AMI is {ami_arch}")
    return Shape(vcpus=found[0].get("VCpuInfo", {}).get("DefaultVCpus") or None,
                 memory_mib=found[0].get("MemoryInfo", {}).get("SizeInMiB") or None)


def _root_volume(image: dict[str, Any], disk_size: str | None) -> tuple[str, int] | None:
    """--disk-size as EBS wants it: whole GiB, absolute (8G) or over the AMI's (+2G)."""
    if disk_size is None:
        return None
    m = _DISK.match(disk_size.strip())
    if not m:
        raise UsageError(f"--disk-size {disk_size!r}: EBS sizes are whole GiB, e.g. 8G or +2G")
    device = image.get("RootDeviceName", "/dev/xvda")
    base = next((int(b["Ebs"].get("VolumeSize", 0)) for b in image.get("BlockDeviceMappings", [])
                 if b.get("DeviceName") == device and "Ebs" in b), 0)
    size = base + int(m.group(2)) if m.group(1) else int(m.group(2))
    if size < base:
        raise UsageError(f"--disk-size {disk_size}: smaller than the AMI's root volume ({base} GiB)")
    return device, size


def _host_keys(spec: LaunchSpec, name: str) -> tuple[dict[str, str], list[str] | None]:
    if spec.host_key_source is not HostKeySource.INJECTED:
        return {}, None
    host = sshkeys.generate(f"root@{name}")
    return {"ed25519_private": host.private_openssh, "ed25519_public": host.public_openssh}, \
        [host.public_openssh]


def _run_instance(ec2: Any, spec: LaunchSpec, settings: AwsSettings, name: str, group: str,
                  user_data: str, tag_list: list[dict[str, str]]) -> str:
    nic: dict[str, Any] = {"DeviceIndex": 0, "AssociatePublicIpAddress": True,
                           "DeleteOnTermination": True, "Groups": [group]}
    if settings.subnet:
        nic["SubnetId"] = settings.subnet
    kwargs: dict[str, Any] = {}
    if settings.root_volume:
        device, gib = settings.root_volume
        kwargs["BlockDeviceMappings"] = [{"DeviceName": device, "Ebs": {
            "VolumeSize": gib, "VolumeType": "gp3", "DeleteOnTermination": True}}]
    out = retry.call(
        ec2.run_instances, "run_instances", capacity=True, ImageId=spec.image,
        InstanceType=spec.instance_type, MinCount=1, MaxCount=1, KeyName=name, UserData=user_data,
        MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled"},
        NetworkInterfaces=[nic], InstanceInitiatedShutdownBehavior="terminate",
        ClientToken=name,  # a retried call never starts a second instance
        TagSpecifications=resources.tag_specs(("instance", "volume", "network-interface"), tag_list),
        **kwargs)
    return str(out["Instances"][0]["InstanceId"])


def _facts(spec: LaunchSpec, settings: AwsSettings, desc: dict[str, Any], region: str) -> PlatformFacts:
    extra = {**settings.shape.facts(), "ami": spec.image, "public_ip": desc.get("PublicIpAddress", ""),
             "public_dns_name": desc.get("PublicDnsName", "")}
    disk = settings.root_volume[1] * 1024**3 if settings.root_volume else None
    return PlatformFacts(
        provider="aws", instance_id=desc["InstanceId"], hostname=desc.get("PrivateDnsName", ""),
        arch=spec.arch, firmware=spec.firmware, datasource="Ec2",
        instance_type=desc.get("InstanceType", spec.instance_type), region=region,
        zone=desc.get("Placement", {}).get("AvailabilityZone"), disk_size=disk, extra=extra)


def _undo(ec2: Any, created: Created, exc: BaseException) -> None:
    """Remove what a failed launch created; say what could not be removed, with the error."""
    note_cleanup_failures(exc, created.remove(ec2))

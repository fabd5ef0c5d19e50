"""Publishing on EC2 as Debian does, each step resumable: upload the raw image as an EBS snapshot
through the EBS direct API (no bucket, no import role), register a private AMI with the boot
mode, ENA and architecture the image needs, copy it to the other regions; then release every copy
(public launch permission, the "latest" SSM parameters) or remove them all.

Everything carries ``dct:run-id`` and ``dct:expires`` from its create call on, so what an
interrupted publish leaves is gc's; a release takes the expiry off what it makes public.  Each AMI
also carries ``dct:uploaded-sha256``: the provider records it, so a test run on a copy says which
bytes it tested.
"""

from __future__ import annotations

import base64
import hashlib
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from debian_cloud_tests import expiry
from debian_cloud_tests.errors import CredentialsError
from debian_cloud_tests.publication.errors import (
    ImageTooLargeError,
    PublicationPermissionError,
    UnknownRegionError,
)
from debian_cloud_tests.publication.state import Publication
from debian_cloud_tests.publication.upload import in_parallel

from . import retry, session
from .errors import PERMISSION, AwsError
from .resources import EXPIRES_TAG, RUN_ID_TAG, SHA256_TAG

#: the EBS direct API's block, and the largest snapshot it takes (64 TiB)
BLOCK = 512 * 1024
MAX_GIB = 65536
ARCHITECTURES = {"amd64": "x86_64", "arm64": "arm64"}
#: EC2's boot modes for the build's firmware ("hybrid" images boot either way)
BOOT_MODES = {"bios": "legacy-bios", "uefi": "uefi", "hybrid": "uefi-preferred"}
ROOT_DEVICE = "/dev/xvda"
#: where the "latest" pointers go unless --ssm-prefix says otherwise
SSM_PREFIX = "/debian-cloud-tests/debian"
UPLOAD_THREADS = 8
WAIT_SECONDS = 1800


def _call(client: Any, action: str, **kwargs: Any) -> Any:
    """One AWS call with the provider's retries; a refusal of permission is publication's error."""
    try:
        return retry.call(getattr(client, action), action, **kwargs)
    except CredentialsError as exc:
        if getattr(exc, "code", "") in PERMISSION:
            raise PublicationPermissionError(exc.message) from None
        raise


def _tags(pub: Publication, name: str) -> list[dict[str, str]]:
    return [{"Key": "Name", "Value": name}, {"Key": RUN_ID_TAG, "Value": pub.run_id},
            {"Key": EXPIRES_TAG, "Value": expiry.mark()},
            {"Key": SHA256_TAG, "Value": pub.uploaded_sha256}]


class AwsPublisher:
    cloud = "aws"

    def __init__(self, ssm_prefix: str = SSM_PREFIX) -> None:
        self.ssm_prefix = ssm_prefix.rstrip("/")
        self._sessions: dict[str, Any] = {}

    def _client(self, service: str, region: str) -> Any:
        if region not in self._sessions:
            self._sessions[region] = session.new_session(region)
        if service == "ec2":
            return session.ec2_client(self._sessions[region])
        return self._sessions[region].client(service)

    def check_regions(self, regions: list[str]) -> None:
        """Every region must be one this account can use, before anything is uploaded."""
        known = {r["RegionName"] for r in _call(self._client("ec2", regions[0]), "describe_regions",
                                                AllRegions=False)["Regions"]}
        unknown = [r for r in regions if r not in known]
        if unknown:
            raise UnknownRegionError(f"--region {', '.join(unknown)}: not a region this account "
                                     f"can use; known: {', '.join(sorted(known))}")

    # -- register privately -------------------------------------------------------------------

    def register(self, pub: Publication, raw: Path, save: Callable[[], None]) -> None:
        home = pub.regions[0]
        if pub.upload.get("state") != "complete":
            self._discard_partial_upload(pub, save)
            self._upload(pub, raw, save)
        if home not in pub.copies:
            pub.copies[home] = self._register_home(pub)
            save()
        ec2 = self._client("ec2", home)
        self._wait_available(ec2, pub.copies[home], home)
        for region in pub.regions[1:]:
            if region not in pub.copies:
                pub.copies[region] = self._copy(pub, region)
                save()
        for region in pub.regions[1:]:
            self._wait_available(self._client("ec2", region), pub.copies[region], region)

    def _upload(self, pub: Publication, raw: Path, save: Callable[[], None]) -> None:
        size = raw.stat().st_size
        gib = max(1, math.ceil(size / 2**30))
        if gib > MAX_GIB:
            raise ImageTooLargeError(f"{raw}: {gib} GiB is more than an EBS snapshot holds "
                                     f"({MAX_GIB} GiB)")
        home = pub.regions[0]
        ebs = self._client("ebs", home)
        digest = pub.uploaded_sha256  # of *raw*, by the register step
        started = _call(ebs, "start_snapshot", VolumeSize=gib, Timeout=60,
                        Description=f"{pub.image_name()} (debian-cloud-tests publish)",
                        ClientToken=f"{pub.run_id}-{digest[:16]}", Tags=_tags(pub, pub.image_name()))
        pub.upload = {"snapshot": started["SnapshotId"], "region": home, "state": "uploading"}
        save()
        snapshot = started["SnapshotId"]

        def put(block: tuple[int, bytes]) -> None:
            index, data = block
            _call(ebs, "put_snapshot_block", SnapshotId=snapshot, BlockIndex=index, BlockData=data,
                  DataLength=len(data), ChecksumAlgorithm="SHA256",
                  Checksum=base64.b64encode(hashlib.sha256(data).digest()).decode())

        written = in_parallel(put, _blocks(raw), UPLOAD_THREADS, "ebs-put")
        _call(ebs, "complete_snapshot", SnapshotId=snapshot, ChangedBlocksCount=written)
        _wait(lambda: _snapshot_state(self._client("ec2", home), snapshot), "completed",
              f"snapshot {snapshot}")
        pub.upload["state"] = "complete"
        save()

    def _discard_partial_upload(self, pub: Publication, save: Callable[[], None]) -> None:
        """A snapshot an interruption left unfinished can take no more blocks: delete it."""
        snapshot = pub.upload.get("snapshot")
        if snapshot:
            _delete_snapshot(self._client("ec2", pub.upload["region"]), snapshot)
            pub.upload = {}
            save()

    def _register_home(self, pub: Publication) -> str:
        ec2 = self._client("ec2", pub.regions[0])
        name = pub.image_name()
        existing = _image_named(ec2, name)  # registered before an interruption lost the reply
        if existing:
            return existing
        firmware = str(pub.meta.get("firmware") or ("uefi" if pub.meta.get("arch") == "arm64" else "bios"))
        arch = str(pub.meta.get("arch", "amd64"))
        return str(_call(
            ec2, "register_image", Name=name, Description=f"Debian {pub.meta.get('release', '')} "
            f"{arch} ({pub.meta.get('vendor', '')}), private until tested",
            Architecture=ARCHITECTURES[arch], BootMode=BOOT_MODES[firmware], EnaSupport=True,
            SriovNetSupport="simple", VirtualizationType="hvm", RootDeviceName=ROOT_DEVICE,
            ImdsSupport="v2.0",
            BlockDeviceMappings=[{"DeviceName": ROOT_DEVICE, "Ebs": {
                "SnapshotId": pub.upload["snapshot"], "VolumeType": "gp3",
                "DeleteOnTermination": True}}],
            TagSpecifications=[{"ResourceType": "image", "Tags": _tags(pub, name)}])["ImageId"])

    def _copy(self, pub: Publication, region: str) -> str:
        ec2 = self._client("ec2", region)
        name = pub.image_name()
        existing = _image_named(ec2, name)
        if existing:
            return existing
        return str(_call(ec2, "copy_image", Name=name, SourceImageId=pub.copies[pub.regions[0]],
                         SourceRegion=pub.regions[0], ClientToken=f"{pub.run_id}-{region}",
                         TagSpecifications=[{"ResourceType": "image", "Tags": _tags(pub, name)}]
                         )["ImageId"])

    def _wait_available(self, ec2: Any, ami: str, region: str) -> None:
        _wait(lambda: _image(ec2, ami).get("State", "missing"), "available", f"{ami} in {region}")

    # -- test there -----------------------------------------------------------------------------

    def test_args(self, pub: Publication, region: str) -> list[str]:
        image_type = str(pub.meta.get("vendor", "ec2"))
        return ["--provider=aws", f"--image={pub.copies[region]}", f"--region={region}",
                f"--image-type={image_type}"]

    # -- release or remove ----------------------------------------------------------------------

    def release(self, pub: Publication, save: Callable[[], None]) -> None:
        for region, ami in pub.copies.items():
            ec2 = self._client("ec2", region)
            _call(ec2, "modify_image_attribute", ImageId=ami,
                  LaunchPermission={"Add": [{"Group": "all"}]})
            snapshots = _snapshots_of(_image(ec2, ami))
            # released: no longer gc's, whatever its expiry said
            _call(ec2, "delete_tags", Resources=[ami, *snapshots], Tags=[{"Key": EXPIRES_TAG}])
            for name in self._ssm_names(pub):
                _call(self._client("ssm", region), "put_parameter", Name=name, Value=ami,
                      Type="String", DataType="aws:ec2:image", Overwrite=True)
                pub.released.append(f"ssm:{region}:{name}={ami}")
            pub.released.append(f"launch-permission:{region}:{ami}=all")
            save()

    def _ssm_names(self, pub: Publication) -> list[str]:
        arch = pub.meta.get("arch", "amd64")
        release = str(pub.meta.get("release", ""))
        version = {"bookworm": "12", "trixie": "13"}.get(release, "")
        vendor = pub.meta.get("vendor", "ec2")
        return [f"{self.ssm_prefix}/{name}/{vendor}/latest/{arch}" for name in (version, release) if name]

    def remove(self, pub: Publication, save: Callable[[], None]) -> None:
        for region in list(pub.copies):
            ec2 = self._client("ec2", region)
            snapshots = _snapshots_of(_image(ec2, pub.copies[region]))
            _deregister(ec2, pub.copies[region])
            for snapshot in snapshots:
                _delete_snapshot(ec2, snapshot)
            del pub.copies[region]
            save()
        if pub.upload.get("snapshot"):
            _delete_snapshot(self._client("ec2", pub.upload["region"]), pub.upload["snapshot"])
            pub.upload = {}
            save()


def _blocks(raw: Path) -> Iterator[tuple[int, bytes]]:
    """The image's blocks that hold data (a snapshot reads zeros where nothing was written),
    the last one padded to a whole block."""
    with raw.open("rb") as f:
        index = 0
        while data := f.read(BLOCK):
            if data.count(0) != len(data):
                yield index, data.ljust(BLOCK, b"\0")
            index += 1


def _wait(state: Callable[[], str], wanted: str, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while (now := state()) != wanted:
        if now in ("failed", "error", "invalid", "deregistered", "missing"):
            raise AwsError(f"aws: {what} is {now}, not {wanted}")
        if time.monotonic() > deadline:
            raise AwsError(f"aws: {what} is still {now} after {WAIT_SECONDS} s")
        retry.sleep(5)


def _image(ec2: Any, ami: str) -> dict[str, Any]:
    try:
        found = _call(ec2, "describe_images", ImageIds=[ami])["Images"]
    except AwsError as exc:
        if exc.code.startswith("InvalidAMIID"):
            return {}
        raise
    return dict(found[0]) if found else {}


def _image_named(ec2: Any, name: str) -> str | None:
    found = _call(ec2, "describe_images", Owners=["self"],
                  Filters=[{"Name": "name", "Values": [name]}])["Images"]
    return str(found[0]["ImageId"]) if found else None


def _snapshots_of(image: dict[str, Any]) -> list[str]:
    return [m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", [])
            if m.get("Ebs", {}).get("SnapshotId")]


def _snapshot_state(ec2: Any, snapshot: str) -> str:
    found = _call(ec2, "describe_snapshots", SnapshotIds=[snapshot])["Snapshots"]
    return str(found[0]["State"]) if found else "missing"


def _deregister(ec2: Any, ami: str) -> None:
    try:
        _call(ec2, "deregister_image", ImageId=ami)
    except AwsError as exc:
        if not exc.code.startswith("InvalidAMIID"):
            raise


def _delete_snapshot(ec2: Any, snapshot: str) -> None:
    try:
        _call(ec2, "delete_snapshot", SnapshotId=snapshot)
    except AwsError as exc:
        if exc.code != "InvalidSnapshot.NotFound":
            raise

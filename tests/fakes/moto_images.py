"""moto's image registration made EC2's where publication depends on it (in-process patches,
undone by the test's monkeypatch):

* register_image keeps what the request says: architecture, boot mode, root device, tags, and
  the root snapshot of its block device mapping (moto makes an empty one of its own);
* copy_image keeps the source's boot mode and root device, takes the request's tags, and its
  copy's root snapshot holds the source's data (EC2 copies the snapshot);
* the EBS direct API's snapshots have EC2's 512 KiB blocks (moto says 512 bytes).

:func:`disk_of` writes the volume an instance of an AMI would get: the root snapshot's blocks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

BLOCK = 512 * 1024


class Images:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        #: (region, AMI) -> (region, snapshot) whose blocks its root volume holds
        self.data_of: dict[tuple[str, str], tuple[str, str]] = {}
        self._patch(monkeypatch)

    def _patch(self, mp: pytest.MonkeyPatch) -> None:
        from moto.ebs.models import EBSSnapshot
        from moto.ec2.responses.amis import AmisResponse

        images = self
        init = EBSSnapshot.__init__

        def ebs_snapshot_init(made: Any, *args: Any, **kwargs: Any) -> None:
            init(made, *args, **kwargs)
            made.block_size = BLOCK

        register, copy = AmisResponse.register_image, AmisResponse.copy_image

        def register_image(response: Any) -> Any:
            result = register(response)
            backend = response.ec2_backend
            ami = backend.amis[result.result["ImageId"]]
            mapping = response._get_param("BlockDeviceMappings", [])
            root = response._get_param("RootDeviceName")
            snapshot = next((m["Ebs"]["SnapshotId"] for m in mapping
                             if m.get("DeviceName") == root and m.get("Ebs", {}).get("SnapshotId")), None)
            ami.architecture = response._get_param("Architecture") or ami.architecture
            ami.boot_mode = response._get_param("BootMode") or ami.boot_mode
            ami.root_device_name = root or ami.root_device_name
            ami.virtualization_type = response._get_param("VirtualizationType") or "hvm"
            if snapshot:
                _swap_snapshot(backend, ami, backend.get_snapshot(snapshot))
                backend.get_snapshot(snapshot).from_ami = ami.id  # in use: EC2 refuses its deletion
                images.data_of[(backend.region_name, ami.id)] = (backend.region_name, snapshot)
            _tag(backend, ami.id, response._parse_tag_specification())
            return result

        def copy_image(response: Any) -> Any:
            result = copy(response)
            backend = response.ec2_backend
            from moto.ec2.models import ec2_backends

            source_region = response._get_param("SourceRegion")
            source_id = response._get_param("SourceImageId")
            source = ec2_backends[backend.account_id][source_region].amis[source_id]
            ami = backend.amis[result.result["ImageId"]]
            ami.boot_mode, ami.root_device_name = source.boot_mode, source.root_device_name
            origin = images.data_of.get((source_region, source_id))
            if origin:
                images.data_of[(backend.region_name, ami.id)] = origin
            tags = response._parse_tag_specification()
            _tag(backend, ami.id, tags)
            _tag(backend, ami.ebs_snapshot.id, tags)
            return result

        mp.setattr(EBSSnapshot, "__init__", ebs_snapshot_init)
        mp.setattr(AmisResponse, "register_image", register_image)
        mp.setattr(AmisResponse, "copy_image", copy_image)

    def disk_of(self, backend: Any, ami: str, out: Path) -> Path | None:
        """The root volume of an instance of *ami*, as a raw file (None: no data of ours)."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.ebs.models import ebs_backends

        origin = self.data_of.get((backend.region_name, ami))
        if origin is None:
            return None
        region, snapshot_id = origin
        snapshot = ebs_backends[DEFAULT_ACCOUNT_ID][region].snapshots[snapshot_id]
        with out.open("wb") as f:
            f.truncate(snapshot.volume_size * 2**30)
            for index, block in sorted(snapshot.blocks.items()):
                f.seek(index * BLOCK)
                f.write(block.block_data)
        return out


def _swap_snapshot(backend: Any, ami: Any, snapshot: Any) -> None:
    """The AMI's root snapshot becomes *snapshot*; the empty one moto made goes."""
    made = ami.ebs_snapshot
    ami.ebs_snapshot = snapshot
    made.from_ami = None
    backend.delete_snapshot(made.id)


def _tag(backend: Any, resource: str, tags: dict[str, dict[str, str]]) -> None:
    for kind_tags in tags.values():
        backend.create_tags([resource], kind_tags)

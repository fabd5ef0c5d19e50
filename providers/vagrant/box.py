"""What ``--image`` names for vagrant: a box already added, or a ``.box`` file added for the run.

A file is added under a run-scoped name into a VAGRANT_HOME inside the run dir, so nothing
reaches the user's ~/.vagrant.d; vagrant-libvirt then uploads its disk into the libvirt pool as
a volume, which outlives ``vagrant destroy`` and goes with the machine (see :mod:`.pool`).  A
named box is the user's: it, and the volume libvirt caches for it, are left alone.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

from debian_cloud_tests.errors import ImageFormatError, ImageNotFoundError


@dataclass(frozen=True)
class BoxSource:
    """Exactly one of *name* (an added box) and *path* (a .box file) is set."""

    name: str | None = None
    path: Path | None = None
    virtual_gib: int | None = None


def resolve(image: str) -> BoxSource:
    """Tell a box name from a box file, and check a file is a libvirt box.

    Raises:
        ImageNotFoundError: a .box path that does not exist.
        ImageFormatError: the file is not a libvirt box.
    """
    path = Path(image).expanduser()
    if not image.endswith(".box") and not path.exists():
        return BoxSource(name=image)
    if not path.is_file():
        raise ImageNotFoundError(f"vagrant: box file not found: {image}")
    return BoxSource(path=path.resolve(), virtual_gib=_libvirt_metadata(path))


def _libvirt_metadata(path: Path) -> int | None:
    """The box's virtual size in GiB, from its metadata.json (which must say libvirt)."""
    try:
        with tarfile.open(path, "r:*") as tar:
            member = next((m for m in tar if m.name.lstrip("./") == "metadata.json"), None)
            fh = tar.extractfile(member) if member is not None else None
            raw = fh.read() if fh is not None else None
    except (tarfile.TarError, OSError, EOFError):
        raise ImageFormatError(f"vagrant: {path} is not a box: not a tar archive, plain or "
                               "compressed") from None
    if raw is None:
        raise ImageFormatError(f"vagrant: {path} has no metadata.json: not a Vagrant box")
    try:
        meta = json.loads(raw)
    except ValueError:
        raise ImageFormatError(f"vagrant: {path}: metadata.json is not JSON") from None
    if not isinstance(meta, dict) or meta.get("provider") != "libvirt":
        provider = meta.get("provider") if isinstance(meta, dict) else None
        raise ImageFormatError(f"vagrant: {path} is a box for {provider or 'no provider'}, not "
                               "libvirt (metadata.json must say \"provider\": \"libvirt\")")
    size = meta.get("virtual_size")
    return int(size) if isinstance(size, int | float) else None


def volume_prefix(box_name: str) -> str:
    """How vagrant-libvirt names the pool volume it uploads a box's disk into."""
    return box_name.replace("/", "-VAGRANTSLASH-") + "_vagrant_box_image_"

"""Recognise a candidate disk image by its bytes, never by its name."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from debian_cloud_tests.errors import ImageFormatError, ImageNotFoundError

_OTHER_FORMATS = {
    b"KDMV": "vmdk", b"vhdxfile": "vhdx", b"conectix": "vpc (VHD)", b"<<< Oracle VM": "vdi",
    b"QEVM": "qed",
}

#: compressions a disk image is published in (Debian's raw images come as disk.raw in a .tar.xz)
_COMPRESSED = {b"\xfd7zXZ\x00": ("xz", "unxz"), b"\x1f\x8b": ("gzip", "gunzip"),
               b"\x28\xb5\x2f\xfd": ("zstd", "unzstd"), b"BZh": ("bzip2", "bunzip2")}
TAR_MAGIC_AT = 257  # "ustar" in a tar header
QCOW2_MAGIC = b"QFI\xfb"


@dataclass(frozen=True)
class ImageInfo:
    path: Path
    fmt: str  # "qcow2" or "raw"
    virtual_size: int  # bytes


def inspect(path: Path) -> ImageInfo:
    """Detect qcow2 or raw (with a partition table) from the content.

    Raises:
        ImageNotFoundError: the file is missing or unreadable.
        ImageFormatError: not a disk image, or a format we do not boot directly.
    """
    try:
        with path.open("rb") as fh:
            head = fh.read(1024)
            size = os.fstat(fh.fileno()).st_size
    except FileNotFoundError:
        raise ImageNotFoundError(f"image not found: {path}") from None
    except IsADirectoryError:
        raise ImageFormatError(f"{path} is a directory, not a disk image") from None
    except OSError as exc:
        raise ImageNotFoundError(f"cannot read image {path}: {exc.strerror}") from None
    if head.startswith(QCOW2_MAGIC):
        return ImageInfo(path, "qcow2", _qcow2_size(path, head))
    for magic, (compression, tool) in _COMPRESSED.items():
        if head.startswith(magic):
            raise ImageFormatError(
                f"{path} is {compression}-compressed; unpack it and give the disk image: "
                f"tar -xf {path} for an archive (Debian's .tar.xz holds disk.raw), else {tool} -k {path}")
    if head[TAR_MAGIC_AT:TAR_MAGIC_AT + 5] == b"ustar":
        raise ImageFormatError(f"{path} is a tar archive; unpack it first: tar -xf {path}, then "
                               "give the disk image inside (disk.raw)")
    for magic, name in _OTHER_FORMATS.items():
        if head.startswith(magic) or (magic == b"conectix" and _vhd_footer(path, size)):
            raise ImageFormatError(
                f"{path} is a {name} image; convert it: qemu-img convert -O qcow2 {path} out.qcow2")
    if len(head) >= 1024 and (head[512:520] == b"EFI PART" or head[510:512] == b"\x55\xaa"):
        if size % 512:
            raise ImageFormatError(f"{path} has a partition table but its size is not whole sectors")
        return ImageInfo(path, "raw", size)
    raise ImageFormatError(f"{path} is not a disk image (neither qcow2 nor raw with an MBR/GPT "
                           "partition table)")


def _qcow2_size(path: Path, head: bytes) -> int:
    if len(head) < 32:
        raise ImageFormatError(f"{path} is a truncated qcow2 image")
    size = int.from_bytes(head[24:32], "big")
    proc = subprocess.run(["qemu-img", "info", "--output=json", "-U", str(path)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise ImageFormatError(f"{path}: qemu-img cannot read it: {proc.stderr.strip()[:200]}")
    info = json.loads(proc.stdout)
    if info.get("backing-filename"):
        backing = info.get("full-backing-filename") or info["backing-filename"]
        if not Path(backing).exists():
            raise ImageNotFoundError(f"{path} needs backing file {backing}, which is missing")
        # The guest would read that file, whatever it is (a host secret, a host disk), and the
        # image's sha256 would cover only the top layer: a candidate must stand alone.
        raise ImageFormatError(f"{path} is an overlay on {backing}: a candidate image must stand "
                               f"alone; flatten it: qemu-img convert -O qcow2 {path} flat.qcow2")
    data_file = info.get("format-specific", {}).get("data", {}).get("data-file")
    if data_file:
        raise ImageFormatError(f"{path} keeps its data in {data_file}: a candidate image must stand "
                               f"alone; flatten it: qemu-img convert -O qcow2 {path} flat.qcow2")
    return int(info.get("virtual-size", size))


def _vhd_footer(path: Path, size: int) -> bool:
    if size < 512:
        return False
    with path.open("rb") as fh:
        fh.seek(size - 512)
        return fh.read(8) == b"conectix"

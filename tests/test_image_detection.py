"""Candidate images are recognised by content, never by name."""

from __future__ import annotations

import re
import subprocess
import tarfile
from pathlib import Path

import pytest
from debian_cloud_tests.providers.qemu import image

from debian_cloud_tests.errors import ImageFormatError, ImageNotFoundError


def _raw_with_mbr(path: Path, size: int = 1024 * 1024) -> Path:
    with path.open("wb") as fh:
        fh.truncate(size)
        fh.seek(510)
        fh.write(b"\x55\xaa")
    return path


def test_raw_with_partition_table(tmp_path: Path) -> None:
    info = image.inspect(_raw_with_mbr(tmp_path / "disk.img"))
    assert (info.fmt, info.virtual_size) == ("raw", 1024 * 1024)


def test_qcow2_named_like_raw(tmp_path: Path) -> None:
    path = tmp_path / "disk.raw"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "3G"], check=True)
    info = image.inspect(path)
    assert (info.fmt, info.virtual_size) == ("qcow2", 3 * 1024**3)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageNotFoundError, match="not found"):
        image.inspect(tmp_path / "nope.qcow2")


@pytest.mark.parametrize("content, message", [
    (b"hello, I am a text file\n" * 100, "not a disk image"),
    (b"", "not a disk image"),
    (b"KDMV" + b"\0" * 2000, "vmdk"),
])
def test_not_a_bootable_image(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "image.qcow2"
    path.write_bytes(content)
    with pytest.raises(ImageFormatError, match=message):
        image.inspect(path)


@pytest.mark.parametrize("mode, said", [
    ("w:xz", "xz-compressed; unpack it and give the disk image: tar -xf "),
    ("w:gz", "gzip-compressed; unpack it"), ("w:bz2", "bzip2-compressed; unpack it"),
    ("w", "a tar archive; unpack it first: tar -xf "),
])
def test_an_archived_image_is_named_with_the_way_to_unpack_it(tmp_path: Path, mode: str,
                                                              said: str) -> None:
    """Debian publishes raw images as disk.raw in a .tar.xz: the run says how to unpack it."""
    tarball = tmp_path / "debian-13-nocloud-amd64.tar"
    with tarfile.open(tarball, mode) as archive:
        archive.add(_raw_with_mbr(tmp_path / "disk.raw"), "disk.raw")
    with pytest.raises(ImageFormatError, match=re.escape(said)):
        image.inspect(tarball)


def test_a_zstd_compressed_image_names_unzstd(tmp_path: Path) -> None:
    path = tmp_path / "disk.raw.zst"
    path.write_bytes(b"\x28\xb5\x2f\xfd" + bytes(2000))  # a zstd frame's magic number
    with pytest.raises(ImageFormatError, match=r"zstd-compressed.*unzstd -k "):
        image.inspect(path)


def test_directory_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(ImageFormatError, match="directory"):
        image.inspect(tmp_path)


def test_qcow2_on_a_host_file_is_refused(tmp_path: Path) -> None:
    """An overlay on any host file (here a text file, as /etc/shadow would be) is not booted."""
    secret = tmp_path / "secret.txt"
    secret.write_text("root:$6$not-for-guests\n" * 64)
    top = tmp_path / "top.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(secret), str(top),
                    "1M"], check=True)
    with pytest.raises(ImageFormatError, match=f"is an overlay on {secret}: .* must stand alone"):
        image.inspect(top)


def test_qcow2_with_an_external_data_file_is_refused(tmp_path: Path) -> None:
    top = tmp_path / "top.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-o", f"data_file={tmp_path / 'data.raw'}",
                    str(top), "1M"], check=True)
    with pytest.raises(ImageFormatError, match=r"keeps its data in .*data\.raw"):
        image.inspect(top)


def test_qcow2_with_missing_backing_file(tmp_path: Path) -> None:
    base = _raw_with_mbr(tmp_path / "base.raw")
    top = tmp_path / "top.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(base), str(top)],
                   check=True)
    base.unlink()
    with pytest.raises(ImageNotFoundError, match="backing file"):
        image.inspect(top)

"""A raw image as the fixed VHD Azure takes: the raw bytes padded to a whole MiB, then a 512-byte
footer (Microsoft's Virtual Hard Disk Image Format Specification, "Hard Disk Footer Format").

Nothing is converted on disk: the page blob is written from the raw file where it holds data, then
the footer at its end; a page blob reads zeros wherever nothing was written.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

MIB = 1 << 20
SECTOR = 512
#: the largest write of one Put Page request
MAX_PAGE = 4 * MIB
COOKIE = b"conectix"
FIXED = 2
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def data_size(raw_size: int) -> int:
    """The VHD's disk size: the raw size rounded up to a whole MiB (Azure's requirement)."""
    return max(MIB, -(-raw_size // MIB) * MIB)


def geometry(size: int) -> tuple[int, int, int]:
    """Cylinders, heads and sectors per track for *size* bytes, as the specification computes them."""
    total = min(size // SECTOR, 65535 * 16 * 255)
    if total >= 65535 * 16 * 63:
        sectors, heads = 255, 16
        cyl_heads = total // sectors
    else:
        sectors = 17
        cyl_heads = total // sectors
        heads = max(4, (cyl_heads + 1023) // 1024)
        if cyl_heads >= heads * 1024 or heads > 16:
            sectors, heads = 31, 16
            cyl_heads = total // sectors
        if cyl_heads >= heads * 1024:
            sectors, heads = 63, 16
            cyl_heads = total // sectors
    return cyl_heads // heads, heads, sectors


def footer(size: int, identity: bytes, when: datetime | None = None) -> bytes:
    """The footer of a fixed VHD of *size* bytes of data; its unique id from *identity* (the same
    bytes give the same footer, so a resumed upload writes what the first one did)."""
    seconds = int((when - _EPOCH).total_seconds()) if when else 0
    cylinders, heads, sectors = geometry(size)
    unique = uuid.UUID(bytes=identity[:16].ljust(16, b"\0")).bytes
    head = struct.pack(">8sIIQI4sI4sQQHBBII16sB", COOKIE, 2, 0x00010000, 0xFFFFFFFFFFFFFFFF,
                       max(0, seconds), b"dct ", 0x00010000, b"Wi2k", size, size, cylinders, heads,
                       sectors, FIXED, 0, unique, 0)
    block = head.ljust(SECTOR, b"\0")
    checksum = ~sum(block) & 0xFFFFFFFF
    return block[:64] + struct.pack(">I", checksum) + block[68:]


def check_footer(block: bytes) -> int:
    """The data size a fixed VHD footer says (checked: cookie, type and checksum)."""
    if len(block) != SECTOR or block[:8] != COOKIE:
        raise ValueError("not a VHD footer")
    (kind,) = struct.unpack(">I", block[60:64])
    (checksum,) = struct.unpack(">I", block[64:68])
    if kind != FIXED or checksum != ~sum(block[:64] + bytes(4) + block[68:]) & 0xFFFFFFFF:
        raise ValueError("not a valid fixed VHD footer")
    return int(struct.unpack(">Q", block[48:56])[0])


def ranges(raw: Path) -> Iterator[tuple[int, bytes]]:
    """The raw file's stretches that hold data, as (offset, bytes): whole sectors, at most
    :data:`MAX_PAGE` each, the last one padded to a whole sector."""
    with raw.open("rb") as f:
        offset = 0
        while data := f.read(MAX_PAGE):
            data = data.ljust(-(-len(data) // SECTOR) * SECTOR, b"\0")
            if data.count(0) == len(data):
                offset += MAX_PAGE
                continue
            start = None
            for at in range(0, len(data), SECTOR):
                zero = data.count(0, at, at + SECTOR) == SECTOR
                if not zero and start is None:
                    start = at
                elif zero and start is not None:
                    yield offset + start, data[start:at]
                    start = None
            if start is not None:
                yield offset + start, data[start:]
            offset += MAX_PAGE

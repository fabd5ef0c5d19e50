"""sha256 of candidate images, cached by (path, size, mtime): a cloud image is a gigabyte or more."""

from __future__ import annotations

import hashlib
from pathlib import Path

from .paths import cache_dir


def sha256(path: Path) -> str:
    st = path.stat()
    key = hashlib.sha256(f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:24]
    cached = cache_dir() / "sha256" / key
    if cached.exists():
        return cached.read_text().strip()
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(4 * 1024 * 1024):
            h.update(chunk)
    digest = h.hexdigest()
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(digest)
    except OSError:
        pass
    return digest

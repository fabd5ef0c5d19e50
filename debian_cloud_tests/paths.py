"""Where the project keeps state between runs (image cache, KVM probe verdict, checksums)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """$DCT_CACHE_DIR, else $XDG_CACHE_HOME/debian-cloud-tests, else ~/.cache/debian-cloud-tests."""
    base = os.environ.get("DCT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "debian-cloud-tests")
    return Path(base)

"""Where the project keeps state between runs (image cache, KVM probe verdict, checksums)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """$DCT_CACHE_DIR, else $XDG_CACHE_HOME/debian-cloud-tests, else ~/.cache/debian-cloud-tests."""
    base = os.environ.get("DCT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "debian-cloud-tests")
    return Path(base)


#: where Debian keeps the CAs an administrator added (update-ca-certificates reads it)
LOCAL_CA_DIR = Path("/usr/local/share/ca-certificates")


def local_ca_certs() -> list[Path]:
    """The CAs this host's administrator added, e.g. a TLS-intercepting proxy's: a guest that
    reaches https mirrors through this host must trust them too (``--ca-cert``)."""
    return sorted(LOCAL_CA_DIR.rglob("*.crt")) if LOCAL_CA_DIR.is_dir() else []

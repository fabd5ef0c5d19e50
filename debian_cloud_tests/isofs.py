"""ISO 9660 volumes with Joliet and Rock Ridge names, built in Python (pycdlib): the media a
platform hands a new machine (a NoCloud seed, Azure's provisioning media, a config drive)."""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from pathlib import Path


def _iso_name(name: str) -> str:
    """ISO 9660's own spelling of a name: upper case, ``_`` for what it does not allow."""
    return re.sub(r"[^A-Z0-9_.]", "_", name.upper())


def write_iso(path: Path, label: str, files: Mapping[str, bytes | str]) -> Path:
    """*files* (relative paths, ``/`` between directories) on a volume labelled *label*."""
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident=label)
    made: set[str] = set()
    for relative, content in files.items():
        parts = relative.split("/")
        for depth in range(1, len(parts)):
            directory = "/".join(parts[:depth])
            if directory not in made:
                iso.add_directory("/" + "/".join(_iso_name(p) for p in parts[:depth]),
                                  rr_name=parts[depth - 1], joliet_path="/" + directory)
                made.add(directory)
        data = content.encode() if isinstance(content, str) else content
        base = _iso_name(parts[-1])
        iso_path = "/" + "/".join([*(_iso_name(p) for p in parts[:-1]),
                                   base + ("" if "." in base else ".") + ";1"])
        iso.add_fp(io.BytesIO(data), len(data), iso_path, rr_name=parts[-1],
                   joliet_path="/" + relative)
    iso.write(str(path))
    iso.close()
    return path

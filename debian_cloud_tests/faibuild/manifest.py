"""The manifest written next to each image: what was built, from what, and its sha256.

The package list is read from the finished image itself (dpkg's status file, with debugfs at the
root partition's offset: nothing is mounted), so it describes what ships, not what was asked for.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

from .errors import BuildError
from .fai import FaiRun
from .spec import BuildSpec

SECTOR = 512
_LINUX_TYPES = {"0FC63DAF-8483-4772-8E79-3D69D8477DE4", "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709",
                "B921B045-1DF0-41C3-AF44-4C6F280D3FAE", "83"}


def root_offset(raw: Path) -> int:
    """Byte offset of the largest Linux partition: the root file system."""
    proc = subprocess.run(["sfdisk", "-J", str(raw)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BuildError(f"cannot read the partition table of {raw}: {proc.stderr.strip()}")
    table = json.loads(proc.stdout)["partitiontable"]
    parts = [p for p in table["partitions"] if str(p.get("type", "")).upper() in _LINUX_TYPES]
    if not parts:
        raise BuildError(f"{raw} has no Linux partition")
    return max(parts, key=lambda p: p["size"])["start"] * table.get("sectorsize", SECTOR)


def packages(raw: Path) -> dict[str, str]:
    """Installed packages and versions, from /var/lib/dpkg/status inside the image."""
    proc = subprocess.run(["debugfs", "-R", "cat /var/lib/dpkg/status",
                           f"{raw}?offset={root_offset(raw)}"], capture_output=True, text=True, check=False)
    if proc.returncode != 0 or "Package:" not in proc.stdout:
        raise BuildError(f"cannot read the package list from {raw}: {proc.stderr.strip()[-200:]}")
    found: dict[str, str] = {}
    for stanza in proc.stdout.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " ")
        if fields.get("Status") == "install ok installed" and "Package" in fields:
            name = fields["Package"]
            if name in found:  # the same package for a second architecture
                name = f"{name}:{fields.get('Architecture', '')}"
            found[name] = fields.get("Version", "")
    return dict(sorted(found.items()))


def sha256(path: Path) -> str:
    """Read in full every time: the digest is what the gate and the publisher compare."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(8 * 1024 * 1024):
            h.update(chunk)
    return h.hexdigest()


def write(path: Path, spec: BuildSpec, image: Path, pkgs: dict[str, str], digest: str,
          cspace: Path, build_log: Path, run: FaiRun, started: dt.datetime) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": spec.name, "release": spec.release, "vendor": spec.vendor, "arch": spec.arch,
        "firmware": spec.firmware, "classes": spec.classes(),
        "build_date": started.isoformat(timespec="seconds"),
        "fai_version": run.fai_version, "config_space": str(cspace.resolve()),
        "image": image.name, "format": spec.suffix, "size": spec.size, "bytes": image.stat().st_size,
        "sha256": digest, "build_log": build_log.name, "fai_logdir": run.logdir,
        "packages": pkgs,
    }
    path.write_text(json.dumps(data, indent=1) + "\n")
    return data

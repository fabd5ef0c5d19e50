"""Collect what killed vagrant runs left in libvirt: domains whose run dir is gone, and the pool
volumes (box disks, seed ISOs) of runs that no longer exist.

vagrant-libvirt writes the Vagrantfile's path into the domain's description; a domain named
``dct-…`` whose Vagrantfile (in a run dir) no longer exists belongs to a run that ended without
destroying it.  Runs in flight keep their run dir, so they are never touched.
``debian-cloud-tests gc --provider vagrant``.
"""

from __future__ import annotations

import re
import tempfile
from datetime import datetime
from pathlib import Path

from debian_cloud_tests.rundir import PREFIX

from . import pool, tools

_SOURCE = re.compile(r"Source:\s*(\S+)")
#: a run's box volume and its seed volume
_RUN_VOLUME = re.compile(r"^dct-(\d{14}-[0-9a-f]{6})-[0-9a-f]{8}(?:_vagrant_box_image_|-seed\.iso$)")


def _orphaned(domain: str) -> bool:
    m = _SOURCE.search(tools.virsh("desc", domain, check=False).stdout)
    return m is not None and Path(m.group(1)).name == "Vagrantfile" and not Path(m.group(1)).exists()


def _run_alive(run_id: str, base: Path) -> bool:
    return any(base.glob(f"{PREFIX}{run_id}-*"))


def collect_garbage(now: datetime | None = None, base: Path | None = None) -> list[str]:
    """Remove leftovers of dead runs; returns what was removed."""
    base = base or Path(tempfile.gettempdir())
    tools.check_libvirt()
    removed: list[str] = []
    names = tools.virsh("list", "--all", "--name").stdout.split()
    for domain in (d for d in names if d.startswith("dct-") and _orphaned(d)):
        tools.virsh("destroy", domain, check=False)
        disks = tools.virsh("domblklist", domain, "--details").stdout.splitlines()
        tools.virsh("undefine", domain, check=False)
        for line in disks:
            fields = line.split()
            if len(fields) == 4 and fields[1] == "disk" and fields[3].startswith("/"):
                tools.virsh("vol-delete", fields[3], check=False)
        removed.append(f"domain {domain}")
    for volume in pool.volumes("dct-"):
        m = _RUN_VOLUME.match(volume)
        if m and not _run_alive(m.group(1), base):
            tools.virsh("vol-delete", "--pool", pool.POOL, volume)
            removed.append(f"volume {volume}")
    return removed

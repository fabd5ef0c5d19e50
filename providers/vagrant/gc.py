"""Collect what killed vagrant runs left in libvirt: domains whose run dir is gone, and the pool
volumes (box disks, seed ISOs) of runs that no longer exist.

vagrant-libvirt writes the Vagrantfile's path into the domain's description; a domain named
``dct-…`` whose Vagrantfile (in a run dir) no longer exists belongs to a run that ended without
destroying it.  Runs in flight keep their run dir, so they are never touched.
``debian-cloud-tests gc --provider vagrant``.  A killed run's guard (or local gc) removes that
run's domain and volumes at once through :func:`collect_run`, its run dir still in place.
"""

from __future__ import annotations

import os
import re
import signal
import tempfile
import time
from datetime import datetime
from pathlib import Path

from debian_cloud_tests.errors import UsageError
from debian_cloud_tests.rundir import PREFIX, require_run_id

from . import pool, tools

_SOURCE = re.compile(r"Source:\s*(\S+)")
#: a run's box volume and its seed volume
_RUN_VOLUME = re.compile(r"^dct-(\d{14}-[0-9a-f]{6})-[0-9a-f]{8}(?:_vagrant_box_image_|-seed\.iso$)")


def _orphaned(domain: str) -> bool:
    m = _SOURCE.search(tools.virsh("desc", domain, check=False).stdout)
    return m is not None and Path(m.group(1)).name == "Vagrantfile" and not Path(m.group(1)).exists()


def _run_alive(run_id: str, base: Path) -> bool:
    return any(base.glob(f"{PREFIX}{run_id}-*"))


def _remove_domain(domain: str) -> None:
    """Stop and undefine *domain*, and delete its disk volumes."""
    tools.virsh("destroy", domain, check=False)
    disks = tools.virsh("domblklist", domain, "--details").stdout.splitlines()
    tools.virsh("undefine", domain, check=False)
    for line in disks:
        fields = line.split()
        if len(fields) == 4 and fields[1] == "disk" and fields[3].startswith("/"):
            tools.virsh("vol-delete", fields[3], check=False)


def collect_garbage(now: datetime | None = None, base: Path | None = None) -> list[str]:
    """Remove leftovers of dead runs; returns what was removed."""
    base = base or Path(tempfile.gettempdir())
    tools.check_libvirt()
    removed: list[str] = []
    names = tools.virsh("list", "--all", "--name").stdout.split()
    for domain in (d for d in names if d.startswith("dct-") and _orphaned(d)):
        _remove_domain(domain)
        removed.append(f"domain {domain}")
    for volume in pool.volumes("dct-"):
        m = _RUN_VOLUME.match(volume)
        if m and not _run_alive(m.group(1), base):
            tools.virsh("vol-delete", "--pool", pool.POOL, volume)
            removed.append(f"volume {volume}")
    return removed


def collect_run(run_id: str, project: str | None = None) -> list[str]:
    """Remove what libvirt holds of one run, whose run dir is still there: the run is known to be
    dead (its guard saw it end without cleaning up); returns what was removed.

    First the run's `vagrant up` and whatever it started (the caller's processes working in
    *project*, the run dir: their command line does not name it) are killed, so that none of
    them defines a domain afterwards; then the domains named ``dct-RUNID-xxxxxxxx-…`` are
    stopped and undefined with their disks, and the run's volumes (seed, box, a disk whose
    domain was never defined) are deleted.  Calling it again removes nothing more.

    Raises:
        UsageError: *run_id* is not a run id, or *project* not one of its run dirs; nothing
            was looked at.
        ProviderError: libvirt cannot be reached, or a volume cannot be deleted.
    """
    require_run_id("vagrant", run_id)
    root = Path(project) if project else None
    if root is not None and not (root.is_absolute() and root.name.startswith(f"{PREFIX}{run_id}-")):
        raise UsageError(f"vagrant: {project!r} is not a run dir of run {run_id}; nothing was removed")
    removed = [f"process {pid}" for pid in _stop_working_in(root)] if root is not None else []
    tools.check_libvirt()
    ours = re.compile(rf"dct-{re.escape(run_id)}-[0-9a-f]{{8}}[-_]")
    for domain in tools.virsh("list", "--all", "--name").stdout.split():
        if ours.match(domain):
            _remove_domain(domain)
            removed.append(f"domain {domain}")
    for volume in pool.volumes(f"dct-{run_id}-"):
        if ours.match(volume):
            tools.virsh("vol-delete", "--pool", pool.POOL, volume)
            removed.append(f"volume {volume}")
    return removed


def _stop_working_in(root: Path, timeout: float = 10.0) -> list[int]:
    """SIGKILL the caller's processes whose working directory is *root*; returns their pids
    once they are gone (or *timeout* passed)."""
    try:
        root = root.resolve(strict=True)
    except OSError:
        return []
    killed = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if proc.stat().st_uid != os.geteuid() or Path(os.readlink(proc / "cwd")) != root:
                continue
            os.kill(int(proc.name), signal.SIGKILL)
        except OSError:
            continue
        killed.append(int(proc.name))
    deadline = time.monotonic() + timeout
    while any(_running(pid) for pid in killed) and time.monotonic() < deadline:
        time.sleep(0.05)
    return killed


def _running(pid: int) -> bool:
    """Whether *pid* is a process that has not ended (a zombie has, awaiting its parent)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False

"""The libvirt storage pool vagrant-libvirt keeps its volumes in, and the volumes of a run.

vagrant-libvirt uploads a box's disk into the pool (``default``) and leaves it there after
``vagrant destroy``: for a box added for the run only, that volume is removed here.  The seed
ISO is uploaded into the same pool, so that libvirt's QEMU (running as its own user) can open it
wherever the run dir is, e.g. under a TMPDIR only its owner can enter.
"""

from __future__ import annotations

from pathlib import Path

from . import tools

POOL = "default"  # vagrant-libvirt's storage_pool_name default
POOL_DIR = "/var/lib/libvirt/images"


def ensure_pool() -> None:
    """The pool, as vagrant-libvirt creates it when it is missing (a directory pool)."""
    if tools.virsh("pool-info", POOL, check=False).returncode == 0:
        return
    tools.virsh("pool-define-as", POOL, "dir", "--target", POOL_DIR)
    tools.virsh("pool-build", POOL)
    tools.virsh("pool-start", POOL)
    tools.virsh("pool-autostart", POOL)


def upload(name: str, source: Path) -> str:
    """Copy *source* into a new raw volume *name*; returns the volume's path."""
    tools.virsh("vol-create-as", POOL, name, str(source.stat().st_size), "--format", "raw")
    tools.virsh("vol-upload", "--pool", POOL, name, str(source))
    return tools.virsh("vol-path", "--pool", POOL, name).stdout.strip()


def volumes(prefix: str = "") -> list[str]:
    """Volumes in the pool whose name starts with *prefix* (none when the pool is absent)."""
    proc = tools.virsh("vol-list", POOL, check=False)
    if proc.returncode != 0:
        return []
    names = [ln.split()[0] for ln in proc.stdout.splitlines() if ln.strip()]
    return [n for n in names if n.startswith(prefix)]


def remove(prefix: str) -> list[BaseException]:
    """Delete the volumes whose name starts with *prefix*; returns the failures."""
    errors: list[BaseException] = []
    for name in volumes(prefix):
        try:
            tools.virsh("vol-delete", "--pool", POOL, name)
        except Exception as exc:
            errors.append(exc)
    return errors

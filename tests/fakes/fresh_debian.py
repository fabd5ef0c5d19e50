"""A fresh Debian install to run the README's commands in: a minimal root made by mmdebstrap.

The root has only what mmdebstrap's default variant installs (Essential, required and important
packages: no python3, no pip, no venv), so it is what a new machine has before our setup runs.
Commands run in it as root in a chroot with pid and mount namespaces of their own: every process
they start (QEMU included) dies with the command, and its mounts vanish with it.  Daemons that
packages would start (sshd, libvirtd) are held back by policy-rc.d, since in a chroot they would
listen on this machine's ports.  The network is the host's: apt and pip reach Debian's archive and
PyPI, as on any new machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from debian_cloud_tests.paths import cache_dir

#: a minimal root is made again when older than this, so its packages stay current
MAX_AGE = 7 * 24 * 3600
CHECKOUT = "/root/debian-cloud-tests"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # root's on Debian
#: where this network's administrator puts extra CAs (a TLS-intercepting proxy's among them)
LOCAL_CAS = Path("/usr/local/share/ca-certificates")

#: what this machine already downloaded (apt's packages, pip's wheels, npm's tarballs), shared
#: into the root where it exists: its setup.sh still resolves, verifies and installs everything
#: by the same route, and only fetches less
SHARED_CACHES = ("/var/cache/apt/archives", "/root/.cache/pip", "/root/.npm")

_ENTER = """set -e
root=$1; cache=$2; shift 2
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --rbind /sys "$root/sys"
mount -t tmpfs tmpfs "$root/run"
mount -t tmpfs tmpfs "$root/tmp"
mkdir -p "$root/root/.cache/debian-cloud-tests"
mount --bind "$cache" "$root/root/.cache/debian-cloud-tests"
for shared in $SHARED_CACHES; do
  if [ -d "$shared" ]; then mkdir -p "$root$shared" && mount --bind "$shared" "$root$shared"; fi
done
exec chroot "$root" "$@"
"""


def unavailable() -> str | None:
    """Why a fresh root cannot be made here, or None."""
    if os.geteuid() != 0:
        return "a fresh Debian root needs root"
    missing = [p for p in ("mmdebstrap", "unshare", "chroot", "git") if not shutil.which(p)]
    return f"missing programs: {', '.join(missing)}" if missing else None


def minimal_tarball(release: str) -> Path:
    """A minimal *release* root as a tarball, made by mmdebstrap and kept a week in the cache."""
    out = cache_dir() / "fresh-roots" / f"{release}.tar"
    if out.exists() and time.time() - out.stat().st_mtime < MAX_AGE:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(f"{release}.part.tar")
    subprocess.run(["mmdebstrap", "--quiet", "--format=tar", release, str(part)], check=True,
                   timeout=900)
    part.replace(out)
    return out


def tracked_files(checkout: Path) -> list[str]:
    """The files git tracks in *checkout*, as they are in the work tree (a clean clone's files)."""
    out = subprocess.run(["git", "-C", str(checkout), "ls-files", "-z"], capture_output=True,
                         check=True).stdout
    return [name for name in out.decode().split("\0") if name and (checkout / name).exists()]


def make_root(dest: Path, release: str, checkout: Path) -> Path:
    """A fresh *release* root in *dest*, with a copy of *checkout* at :data:`CHECKOUT`."""
    dest.mkdir()
    # tar(1), not tarfile: device nodes, owners and xattrs as mmdebstrap wrote them
    subprocess.run(["tar", "-C", str(dest), "--xattrs", "--numeric-owner", "-xf",
                    str(minimal_tarball(release))], check=True, timeout=600)
    shutil.copy("/etc/resolv.conf", dest / "etc/resolv.conf")
    cas = dest / LOCAL_CAS.relative_to("/")
    cas.mkdir(parents=True, exist_ok=True)
    for ca in LOCAL_CAS.glob("*.crt"):  # as on every machine behind this network's TLS proxy
        shutil.copy(ca, cas)
    policy = dest / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    copy = dest / CHECKOUT.lstrip("/")
    for name in tracked_files(checkout):
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(checkout / name, target, follow_symlinks=False)
    return dest


def run_in(root: Path, command: str, *, env: Mapping[str, str] | None = None,
           timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    """*command* (a shell line) as root in *root*, in :data:`CHECKOUT`, with a login's environment.

    The image cache is shared into the root, so test images built once serve both, and so are
    the download caches of :data:`SHARED_CACHES`.
    """
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    environment: Sequence[str] = [f"{k}={v}" for k, v in {
        "PATH": PATH, "HOME": "/root", "TERM": "dumb", "LANG": "C.UTF-8", **(env or {})}.items()]
    cmd = ["unshare", "--pid", "--fork", "--kill-child", "--mount", "--propagation", "private",
           "env", f"SHARED_CACHES={' '.join(SHARED_CACHES)}",
           "/bin/sh", "-c", _ENTER, "sh", str(root), str(cache),
           "/usr/bin/env", "-i", *environment, "/bin/bash", "-c", f"cd {CHECKOUT} && {command}"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def remove_root(root: Path) -> None:
    """Remove *root*, never following into a mount (the shared cache) that outlived its command."""
    shared = root / "root/.cache/debian-cloud-tests"
    if os.path.ismount(shared):
        raise RuntimeError(f"{shared} is still mounted: not removing {root}")
    shutil.rmtree(root, ignore_errors=True)

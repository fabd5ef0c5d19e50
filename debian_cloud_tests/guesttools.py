"""Programs a check runs in the guest without installing them there: the host downloads the
guest release's packages from Debian's archive, unpacks them under the cache dir, and a check
copies the tree into a temporary directory of the guest and runs it with LD_LIBRARY_PATH.
Nothing enters the image's dpkg database, and the guest needs no network of its own.

The download is apt's own (``apt-get download`` on a scratch configuration for the guest's
release and arch: its Packages indexes verified against Debian's archive keyring), done once
per release and arch; this host's apt settings (a proxy) apply.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from . import filelock, scratchapt
from .errors import DCTError, MissingDependencyError
from .paths import cache_dir

MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
#: iperf3 and what it needs beyond a cloud image's libraries (libssl3 and libc6 are there)
IPERF3 = ("iperf3", "libiperf0", "libsctp1")
TIMEOUT = 600.0


class FetchError(DCTError):
    """The packages could not be downloaded or unpacked (the archive, the network, a proxy)."""


def tree(release: str, arch: str, packages: Sequence[str] = IPERF3) -> Path:
    """The unpacked files of *packages* for *release* on *arch*, downloaded the first time.

    Raises:
        MissingDependencyError: apt-get, dpkg-deb or Debian's archive keyring is missing.
        FetchError: the download failed.
    """
    dest = cache_dir() / "guest-tools" / f"{'+'.join(packages)}-{release}-{arch}"
    if (dest / ".complete").exists():
        return dest
    with filelock.exclusive(dest.with_name(dest.name + ".lock")):
        if (dest / ".complete").exists():  # another process fetched it meanwhile
            return dest
        _check_tools()
        with tempfile.TemporaryDirectory(prefix="dct-debs-") as scratch:
            debs = _download(Path(scratch), release, arch, packages)
            unpacked = Path(scratch) / "tree"
            for deb in debs:
                _run(["dpkg-deb", "-x", str(deb), str(unpacked)], f"unpack {deb.name}")
            (unpacked / ".complete").write_text("\n".join(d.name for d in debs) + "\n")
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(unpacked, dest, symlinks=True)
    return dest


def _check_tools() -> None:
    missing = [name for name in ("apt-get", "dpkg-deb") if not shutil.which(name)]
    if missing:
        raise MissingDependencyError(f"{' and '.join(missing)} not found: apt-get install apt dpkg")
    if not KEYRING.exists():
        raise MissingDependencyError(f"{KEYRING} not found: apt-get install debian-archive-keyring")


def _download(scratch: Path, release: str, arch: str, packages: Sequence[str]) -> list[Path]:
    """The .debs of *packages*, from the release and its -security suite, into *scratch*/debs."""
    sources = scratch / "sources.list"
    signed = f"[arch={arch} signed-by={KEYRING}]"
    sources.write_text(f"deb {signed} {MIRROR} {release} main\n"
                       f"deb {signed} {SECURITY_MIRROR} {release}-security main\n")
    (scratch / "status").write_text("")
    debs = scratch / "debs"
    debs.mkdir()
    apt = ["apt-get", "-q", *scratchapt.options(scratch, sources, arch, scratch / "status")]
    _run([*apt, "update", "--error-on=any"], f"read the {release} package index")
    _run([*apt, "download", *packages], f"download {', '.join(packages)} for {release}/{arch}",
         cwd=debs)
    found = sorted(debs.glob("*.deb"))
    if len(found) != len(packages):
        raise FetchError(f"apt-get download gave {len(found)} packages for {len(packages)} asked "
                         f"({', '.join(packages)}, {release}/{arch})")
    return found


def _run(cmd: list[str], what: str, cwd: Path | None = None) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=TIMEOUT,
                              env={**os.environ, "LC_ALL": "C"})
    except subprocess.TimeoutExpired:
        raise FetchError(f"could not {what}: no answer within {TIMEOUT:.0f} s") from None
    if proc.returncode != 0:
        said = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        raise FetchError(f"could not {what}: {said[-1] if said else f'exit {proc.returncode}'}")

"""A signed apt repository that upgrades a test image, for the upgrade suite's tests: a newer
kernel (-security's for an image of the release's own kernel, else the backports kernel; with
every package it needs that the image lacks, as apt resolves them against the image's own dpkg
database) and a rebuilt newer version of an installed
package (netbase); or that package alone, its postinst failing.

apt runs on this host with a scratch configuration (the image's dpkg status, the archive's
signatures checked with the image's own keyring); the Release is signed with a key made for the
repository alone.  Built once per image tree and kind, and cached.
"""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .. import scratchapt
from ..errors import BuildError, MissingDependencyError
from ..filelock import exclusive
from ..paths import cache_dir
from .builder import Recipe, _base_tree
from .rootfs import KERNEL_PACKAGE, MIRROR, SECURITY_MIRROR

SUITE = "dct-upgrade"
#: the installed package rebuilt newer (small, arch all, nothing depends on its contents changing)
REBUILT = "netbase"
KINDS = ("good", "failing-package", "unsigned")
FAILING_POSTINST = "#!/bin/sh\necho 'netbase: cannot configure (planted failure)' >&2\nexit 1\n"


@dataclass(frozen=True)
class UpgradeRepo:
    directory: Path
    key: Path  # armored public key
    #: the kernel it brings, as `uname -r` will name it
    kernel: str

    def options(self) -> tuple[str, ...]:
        return (f"--upgrade={self.directory}", f"--upgrade-key={self.key}")


def build(recipe: Recipe, kind: str = "good") -> UpgradeRepo:
    """The repository of *kind* for *recipe*'s image (built on first use)."""
    if kind not in KINDS:
        raise ValueError(f"unknown repository kind {kind!r}")
    for tool, package in (("gpg", "gpg"), ("apt-get", "apt"), ("dpkg-deb", "dpkg")):
        if not shutil.which(tool):
            raise MissingDependencyError(f"building the upgrade repository needs {tool}: "
                                         f"apt-get install {package}")
    code = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:8]
    out = cache_dir() / "upgrade-repos" / f"{recipe.release}-{recipe.arch}-{recipe.tree_key()}-{kind}-{code}"
    out.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(out.with_suffix(".lock")):
        if not (out / "repo.json").is_file():
            shutil.rmtree(out, ignore_errors=True)
            _build(recipe, kind, out)
    meta = json.loads((out / "repo.json").read_text())
    return UpgradeRepo(out / "repo", out / "key.asc", meta["kernel"])


def _build(recipe: Recipe, kind: str, out: Path) -> None:
    tree = _base_tree(recipe)
    with tempfile.TemporaryDirectory(prefix="dct-upgrade-repo-", dir=out.parent) as tmp:
        work = Path(tmp)
        pool = work / "repo" / "pool"
        pool.mkdir(parents=True)
        debs = _download(tree, recipe.release, recipe.arch, work / "apt",
                         release_kernel=recipe.kernel == "release", kernel=kind != "failing-package")
        kernel = ""
        for deb in debs:
            name = deb.name.split("_", 1)[0]
            if name.startswith("linux-image-") and not name.startswith(f"linux-image-{recipe.arch}") \
                    and name != KERNEL_PACKAGE[recipe.arch] and "-dbg" not in name:
                kernel = name.removeprefix("linux-image-").removesuffix("-unsigned")
            if name == REBUILT:
                _rebuild(deb, pool, failing=kind == "failing-package", work=work)
            else:
                shutil.copy(deb, pool / deb.name)
        if not kernel and kind != "failing-package":
            raise BuildError(f"the upgrade repository for {recipe.release}: the archive has no "
                             f"newer kernel than the image's ({recipe.kernel} kernel)")
        write_index(work / "repo", recipe.arch)
        key = sign_release(work / "repo" / "dists" / SUITE, work / "gnupg", signed=kind != "unsigned")
        (work / "key.asc").write_text(key)
        (work / "repo.json").write_text(json.dumps({"kind": kind, "kernel": kernel}))
        out.mkdir()
        for name in ("repo", "key.asc", "repo.json"):  # repo.json last: it says the build is whole
            (work / name).rename(out / name)


def _download(tree: Path, release: str, arch: str, scratch: Path,
              release_kernel: bool, kernel: bool = True) -> list[Path]:
    """What upgrading *tree* to a newer kernel needs (unless not *kernel*), and the rebuilt
    package's current deb, downloaded by apt as the image's own dpkg database sees them."""
    keyring = tree / "usr/share/keyrings/debian-archive-keyring.gpg"
    sources = scratch / "sources.list"
    scratch.mkdir(parents=True, exist_ok=True)
    sources.write_text("".join(
        f"deb [signed-by={keyring}] {mirror} {suite} main\n" for mirror, suite in (
            (MIRROR, release), (MIRROR, f"{release}-updates"), (MIRROR, f"{release}-backports"),
            (SECURITY_MIRROR, f"{release}-security"))))
    # what the kernel depends on, not what it recommends (AppArmor, firmware): each of those
    # would add its own postinst and another initramfs build under TCG to every upgrade run,
    # and apt in the guest skips a recommended package its sources do not hold
    options = [*scratchapt.options(scratch, sources, arch, tree / "var/lib/dpkg/status"), "-q", "-y",
               "-o", "APT::Install-Recommends=false"]
    _apt([*options, "update"])
    # an image of the release's own kernel upgrades to -security's; one already at the newest
    # to the backports kernel
    newer = [] if release_kernel else ["-t", f"{release}-backports"]
    if kernel:
        _apt([*options, "--download-only", *newer, "install", KERNEL_PACKAGE[arch]])
    _apt([*options, "--download-only", "--reinstall", "install", REBUILT])
    return sorted(scratchapt.archives(scratch).glob("*.deb"))


def _apt(args: list[str]) -> None:
    proc = subprocess.run(["apt-get", *args], capture_output=True, text=True,
                          env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise BuildError(f"apt-get {args[-1]} for the upgrade repository failed: {tail}")


def _rebuild(deb: Path, pool: Path, failing: bool, work: Path) -> None:
    """*deb* rebuilt as a newer version ("+dct1"), its postinst failing if *failing*."""
    unpacked = work / "rebuild"
    shutil.rmtree(unpacked, ignore_errors=True)
    subprocess.run(["dpkg-deb", "-R", str(deb), str(unpacked)], check=True)
    control = unpacked / "DEBIAN/control"
    lines = [f"{line}+dct1" if line.startswith("Version:") else line
             for line in control.read_text().splitlines()]
    control.write_text("\n".join(lines) + "\n")
    if failing:
        postinst = unpacked / "DEBIAN/postinst"
        postinst.write_text(FAILING_POSTINST)
        postinst.chmod(0o755)
    version = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("Version:"))
    name = deb.name.split("_", 1)[0]
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(unpacked),
                    str(pool / f"{name}_{version}_all.deb")], check=True, capture_output=True)


def write_index(repo: Path, arch: str) -> None:
    """Packages for every deb in pool/, and the Release naming its hashes."""
    stanzas = []
    for deb in sorted((repo / "pool").glob("*.deb")):
        control = subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True, text=True,
                                 check=True).stdout.rstrip("\n")
        data = deb.read_bytes()
        stanzas.append(f"{control}\nFilename: pool/{deb.name}\nSize: {len(data)}\n"
                       f"SHA256: {hashlib.sha256(data).hexdigest()}\n")
    dist = repo / "dists" / SUITE
    index = dist / "main" / f"binary-{arch}"
    index.mkdir(parents=True)
    packages = "\n".join(stanzas).encode()
    (index / "Packages").write_bytes(packages)
    (index / "Packages.gz").write_bytes(gzip.compress(packages, mtime=0))
    hashes = "".join(f" {hashlib.sha256(p.read_bytes()).hexdigest()} {p.stat().st_size} "
                     f"{p.relative_to(dist)}\n" for p in sorted(index.iterdir()))
    (dist / "Release").write_text(
        f"Origin: debian-cloud-tests\nLabel: upgrade test\nSuite: {SUITE}\nCodename: {SUITE}\n"
        f"Date: {email.utils.formatdate(usegmt=True)}\nArchitectures: {arch}\nComponents: main\n"
        f"SHA256:\n{hashes}")


def sign_release(dist: Path, home: Path, signed: bool) -> str:
    """Sign *dist*'s Release with a new key (InRelease) unless not *signed*; the armored
    public key.  The key's gpg-agent is stopped before returning."""
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    gpg = ["gpg", "--batch", "--no-tty", "--quiet"]
    try:
        subprocess.run([*gpg, "--passphrase", "", "--quick-gen-key",
                        "debian-cloud-tests upgrade repository", "ed25519", "sign", "1d"],
                       env=env, check=True, capture_output=True)
        if signed:
            subprocess.run([*gpg, "--digest-algo", "SHA512", "--clearsign", "-o",
                            str(dist / "InRelease"), str(dist / "Release")],
                           env=env, check=True, capture_output=True)
        return subprocess.run([*gpg, "--armor", "--export"], env=env, check=True,
                              capture_output=True, text=True).stdout
    except subprocess.CalledProcessError as exc:
        raise BuildError(f"signing the upgrade repository failed: {exc.stderr.strip()[-200:]}") from None
    finally:
        subprocess.run(["gpgconf", "--kill", "all"], env=env, capture_output=True, check=False)

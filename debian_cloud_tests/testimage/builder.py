"""Build (or take from the cache) a Debian cloud image for testing, optionally with planted defects.

The root tree is bootstrapped once per recipe and kept; each variant copies it, plants its
defects and becomes a disk in about half a minute.  The cache key is a hash of the recipe, of
the code that builds it and of the release's security index, so a change to any rebuilds and
nothing stale is ever served (an image that misses a security update fails the config suite); of
the defects module only the parts a recipe uses count, so editing one defect rebuilds only its
variants.  Entries of old keys are removed once unused for two days (:mod:`.cacheprune`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import mounts
from ..errors import BuildError, MissingDependencyError
from ..filelock import exclusive
from ..paths import cache_dir
from . import cacheprune, disk, esp, rootfs
from . import defects as defects_mod

GIB = 1024**3
REQUIRED_TOOLS = {
    "mmdebstrap": "mmdebstrap", "sgdisk": "gdisk", "mkfs.ext4": "e2fsprogs",
    "mkfs.fat": "dosfstools", "mcopy": "mtools", "grub-mkimage": "grub-common",
    "qemu-img": "qemu-utils",
}
#: what a foreign-architecture bootstrap needs in addition
FOREIGN_TOOLS = {"arch-test": "arch-test", "qemu-aarch64-static": "qemu-user-static"}


@dataclass(frozen=True)
class Recipe:
    """What an image is made of; its hash names the cached result."""

    release: str = "bookworm"
    arch: str = "amd64"
    size_gib: int = 2
    defects: tuple[str, ...] = field(default_factory=tuple)
    fmt: str = "qcow2"
    #: packages beyond a cloud image's, and what the image is for (a builder VM has FAI)
    extra_packages: tuple[str, ...] = field(default_factory=tuple)
    purpose: str = "test"
    #: "newest": the kernel of -security or -updates, as every image should have; "release": the
    #: release's own, older (an image an upgrade brings a newer kernel to)
    kernel: str = "newest"

    def tree_key(self) -> str:
        kernel = {} if self.kernel == "newest" else {"kernel": self.kernel}
        return _digest({"release": self.release, "arch": self.arch,
                        "packages": rootfs.packages(self.arch, self.extra_packages, self.release),
                        "security": security_index(self.release, self.arch)} | kernel, [rootfs])

    def image_key(self) -> str:
        # fields at their defaults stay out, so adding a field leaves existing keys alone
        fields = {k: v for k, v in asdict(self).items()
                  if k not in ("extra_packages", "purpose", "kernel") or v != getattr(Recipe, k, ())}
        return _digest(fields | {"tree": self.tree_key(),
                                 "defects_code": defects_mod.source_for(self.defects)},
                       [rootfs, disk, esp])

    def path(self) -> Path:
        """Where the image is cached (it may not be built yet)."""
        return cache_dir() / "images" / f"{self.name}-{self.image_key()}.{self.fmt}"

    @property
    def name(self) -> str:
        suffix = "-".join(self.defects) if len(self.defects) <= 2 else f"{len(self.defects)}-defects"
        suffix = (suffix or "good") + ("" if self.kernel == "newest" else f"-{self.kernel}-kernel")
        return f"debian-{self.release}-{self.purpose}-{self.arch}-{suffix}"


@functools.cache
def security_index(release: str, arch: str) -> str:
    """rootfs.security_index, asked once per process; when the archive cannot be asked, the
    index last seen here, so that images cached offline are still found (and not rebuilt)."""
    memo = cache_dir() / f"security-index-{release}-{arch}"
    found = rootfs.security_index(release, arch)
    if found == "unreachable":
        return memo.read_text().strip() if memo.is_file() else found
    memo.parent.mkdir(parents=True, exist_ok=True)
    partial = memo.with_name(f"{memo.name}.{os.getpid()}")
    partial.write_text(found + "\n")
    partial.replace(memo)
    return found


def build_image(recipe: Recipe, log: Iterator[str] | None = None) -> Path:
    """Return the path of the image for *recipe*, building it if it is not cached.

    Raises:
        MissingDependencyError: a build tool is not installed (names the package).
        BuildError: a build step failed, or this is not run as root.
    """
    unknown = [d for d in recipe.defects if d not in defects_mod.DEFECTS]
    if unknown:
        raise BuildError(f"unknown defect(s) {', '.join(unknown)}; known: "
                         f"{', '.join(sorted(defects_mod.DEFECTS))}")
    out = recipe.path()
    if out.exists():
        cacheprune.mark_used(out)
        return out
    check_build_host()
    out.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(out.with_suffix(".lock")):
        if out.exists():
            cacheprune.mark_used(out)
            return out
        tree = _base_tree(recipe)
        with tempfile.TemporaryDirectory(prefix="dct-variant-", dir=out.parent) as tmp:
            work = Path(tmp)
            variant = work / "tree"
            subprocess.run(["cp", "-a", "--reflink=auto", str(tree), str(variant)], check=True)
            layout = disk.new_layout()
            rootfs.configure(variant, recipe.release, recipe.arch, layout)
            esp.stage(variant, recipe.arch, layout)  # before the defects: one may change it
            for name in recipe.defects:
                try:
                    defects_mod.DEFECTS[name](variant, recipe.arch, layout)
                except (OSError, ValueError, subprocess.CalledProcessError) as exc:
                    raise BuildError(f"planting defect {name} failed: {exc}") from None
            disk.install_grub_modules(variant, recipe.arch)
            raw = work / "disk.raw"
            disk.build_disk(variant, raw, recipe.size_gib * GIB, recipe.arch, layout)
            shutil.rmtree(variant)
            if recipe.fmt == "qcow2":
                disk.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw),
                          str(work / "disk.qcow2")])
                raw = work / "disk.qcow2"
            (out.with_suffix(".json")).write_text(json.dumps(asdict(recipe), indent=1))
            raw.replace(out)
    cacheprune.prune(out.parent, keep=out)
    return out


def check_build_host() -> None:
    """Fail early, naming the package to install, rather than half-way through a build."""
    missing = sorted({pkg for tool, pkg in REQUIRED_TOOLS.items() if not shutil.which(tool)})
    if missing:
        raise MissingDependencyError(f"building test images needs: apt-get install {' '.join(missing)}")
    if os.geteuid() != 0:
        raise BuildError("building test images needs root (mmdebstrap --mode=root, device nodes)")


def _base_tree(recipe: Recipe) -> Path:
    """The bootstrapped, unconfigured root tree for this release and arch (cached)."""
    tree = cache_dir() / "trees" / f"{recipe.release}-{recipe.arch}-{recipe.tree_key()}"
    if tree.is_dir():
        cacheprune.mark_used(tree)
        return tree
    tree.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(tree.with_suffix(".lock")):
        if tree.is_dir():
            cacheprune.mark_used(tree)
            return tree
        if recipe.arch != host_arch():
            missing = sorted({pkg for tool, pkg in FOREIGN_TOOLS.items() if not shutil.which(tool)})
            if missing:
                raise MissingDependencyError(f"building {recipe.arch} images on this host needs: "
                                             f"apt-get install {' '.join(missing)}")
            _enable_binfmt()
        partial = tree.with_name(tree.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        try:
            rootfs.bootstrap(partial, recipe.release, recipe.arch, recipe.extra_packages,
                             release_kernel=recipe.kernel == "release")
        except BaseException:
            mounts.unmount_under(partial)  # a killed mmdebstrap leaves its chroot's mounts
            shutil.rmtree(partial, ignore_errors=True)
            raise
        partial.rename(tree)
    cacheprune.prune(tree.parent, keep=tree)
    return tree


def host_arch() -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)


def _enable_binfmt() -> None:
    """Foreign-arch chroots need binfmt_misc mounted (a fresh machine may not have it)."""
    if not Path("/proc/sys/fs/binfmt_misc/status").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", "/proc/sys/fs/binfmt_misc"],
                       check=False, capture_output=True)
    if shutil.which("update-binfmts"):
        subprocess.run(["update-binfmts", "--enable"], check=False, capture_output=True)




def _digest(data: object, modules: Sequence[object]) -> str:
    h = hashlib.sha256(json.dumps(data, sort_keys=True).encode())
    for mod in modules:
        h.update(Path(mod.__file__).read_bytes())  # type: ignore[attr-defined]
    return h.hexdigest()[:12]

"""What the defects share to plant themselves: units enabled or masked, files edited or appended
to, kernel arguments, cloud-init configuration, packages installed or purged with the tree's own
dpkg, and units that act only from the second boot on."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from pathlib import Path


def unit(tree: Path, name: str, body: str, target: str = "multi-user.target") -> None:
    """Install and enable a system unit, as `systemctl enable` would."""
    path = tree / "etc/systemd/system" / name
    path.write_text(body)
    wants = tree / f"etc/systemd/system/{target}.wants"
    wants.mkdir(parents=True, exist_ok=True)
    relink(wants / name, f"/etc/systemd/system/{name}")


def relink(link: Path, target: str) -> None:
    """Point *link* at *target*, replacing whatever is there."""
    link.unlink(missing_ok=True)
    link.symlink_to(target)


def mask(tree: Path, unit: str) -> None:
    """`systemctl mask`: the unit can no longer be started."""
    relink(tree / "etc/systemd/system" / unit, "/dev/null")


def append_cmdline(tree: Path, extra: str) -> None:
    """Add kernel arguments to the boot entry (several defects may each add theirs)."""
    edit(tree / "boot/grub/grub.cfg", r"^(linux .*)$", rf"\1 {extra}")


def edit(path: Path, pattern: str, repl: str) -> None:
    text = path.read_text()
    new, count = re.subn(pattern, repl, text, flags=re.M)
    if not count:
        raise ValueError(f"defect could not be planted: {pattern!r} not in {path}")
    path.write_text(new)


def cloud_cfg(tree: Path, name: str, text: str) -> None:
    (tree / "etc/cloud/cloud.cfg.d" / name).write_text(text)


def append(path: Path, text: str) -> None:
    with path.open("a") as fh:
        fh.write(text)


def purge(tree: Path, *packages: str) -> None:
    """`dpkg --purge` inside the tree, as a careless build's clean-up would."""
    subprocess.run(["chroot", str(tree), "dpkg", "--purge", "--force-depends", *packages],
                   check=True, capture_output=True)


def install_package(tree: Path, name: str, files: dict[str, str], conffiles: Sequence[str] = (),
                     remove: bool = False) -> None:
    """Build a small package holding *files* (path under / -> content) and install it with the
    tree's own dpkg; with *remove*, then remove it (not purge), as a build's clean-up might."""
    import tempfile

    with tempfile.TemporaryDirectory(dir=tree / "tmp") as work:
        root = Path(work) / "pkg"
        (root / "DEBIAN").mkdir(parents=True)
        for rel, content in files.items():
            (root / rel.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            (root / rel.lstrip("/")).write_text(content)
        (root / "DEBIAN/control").write_text(
            f"Package: {name}\nVersion: 1.0\nArchitecture: all\nMaintainer: build <build@localhost>\n"
            f"Description: left by an image build\n")
        if conffiles:
            (root / "DEBIAN/conffiles").write_text("".join(f"{c}\n" for c in conffiles))
        subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(root), f"{work}/{name}.deb"],
                       check=True, capture_output=True)
        inside = "/" + str(Path(work).relative_to(tree))
        subprocess.run(["chroot", str(tree), "dpkg", "-i", f"{inside}/{name}.deb"], check=True,
                       capture_output=True)
    if remove:
        subprocess.run(["chroot", str(tree), "dpkg", "--remove", name], check=True, capture_output=True)


BOOTED_BEFORE = "/var/lib/booted-before"


def after_first_boot(tree: Path, name: str, description: str, exec_start: str, order: str) -> None:
    """A unit that acts only from the second boot on (a first-boot unit leaves a marker)."""
    # Pulled in by cloud-init.target, which comes after multi-user.target: ordering these units
    # after cloud-final from multi-user.target would be a cycle.
    unit(tree, "mark-booted.service",
          f"[Unit]\nDescription=Remember the first boot\nConditionPathExists=!{BOOTED_BEFORE}\n"
          "After=cloud-final.service\n\n[Service]\nType=oneshot\n"
          f"ExecStart=/usr/bin/touch {BOOTED_BEFORE}\n\n[Install]\nWantedBy=cloud-init.target\n",
          target="cloud-init.target")
    wanted_by = "multi-user.target" if "Before=" in order else "cloud-init.target"
    unit(tree, f"{name}.service",
          f"[Unit]\nDescription={description}\nConditionPathExists={BOOTED_BEFORE}\n{order}\n\n"
          f"[Service]\nType=oneshot\nExecStart={exec_start}\n\n[Install]\nWantedBy={wanted_by}\n",
          target=wanted_by)

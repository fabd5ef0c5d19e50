"""Stand-ins for the ``virsh`` and ``vagrant`` programs, for the vagrant provider's clean-up tests
that must not start a libvirtd or a guest.

:func:`install` writes two executables into a directory to put first on PATH; both keep one
libvirt's state (the ``default`` pool's volumes, the domains and their disks) in a JSON file,
and log every command line they ran.  ``vagrant up`` does what vagrant-libvirt does before the
guest boots: it defines the domain ``<default_prefix>default`` (the Vagrantfile's) with a disk
volume, writes the domain's id into ``.vagrant``, and then, as while a guest boots, waits until
it is stopped.  ``vagrant destroy`` removes the project's domain and disk.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import sys
import time
import uuid
from pathlib import Path
from typing import Any

STATE_ENV = "DCT_FAKE_LIBVIRT_STATE"
POOL_DIR = "/fake/pool"


class Libvirt:
    """The state file of one fake libvirt, read and written under a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.path.read_text()))
        except FileNotFoundError:
            return {"pool": False, "volumes": {}, "domains": {}, "log": []}

    def change(self, fn: Any) -> Any:
        with open(f"{self.path}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = self.read()
            out = fn(state)
            self.path.write_text(json.dumps(state))
            return out

    def inventory(self) -> dict[str, list[str]]:
        state = self.read()
        return {"domains": sorted(state["domains"]), "volumes": sorted(state["volumes"])}

    def log(self) -> list[list[str]]:
        return list(self.read()["log"])

    def define(self, name: str, vagrantfile: str = "") -> None:
        """A domain (with a disk) of someone else's, or of a run, planted by a test."""
        def add(state: dict[str, Any]) -> None:
            state["volumes"][f"{name}.img"] = f"{POOL_DIR}/{name}.img"
            state["domains"][name] = {"state": "running", "disks": [f"{POOL_DIR}/{name}.img"],
                                      "desc": f"Source: {vagrantfile}", "id": str(uuid.uuid4())}
        self.change(add)

    def add_volume(self, name: str) -> None:
        self.change(lambda s: s["volumes"].__setitem__(name, f"{POOL_DIR}/{name}"))


def install(bin_dir: Path, state: Path) -> Libvirt:
    """Write ``virsh`` and ``vagrant`` into *bin_dir*; returns the state they share (through
    ``DCT_FAKE_LIBVIRT_STATE``, which the caller sets)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for program in ("virsh", "vagrant"):
        exe = bin_dir / program
        exe.write_text(f"#!/bin/sh\nexec {sys.executable} {Path(__file__).resolve()} {program} \"$@\"\n")
        exe.chmod(0o755)
    return Libvirt(state)


def _virsh(state: dict[str, Any], args: list[str]) -> tuple[int, str]:
    while args and args[0] in ("-q", "-c"):
        args = args[2:] if args[0] == "-c" else args[1:]
    verb, rest = args[0], [a for a in args[1:] if not a.startswith("--")]
    domains, volumes = state["domains"], state["volumes"]
    if verb == "version":
        return 0, "Running against daemon: 9.0.0\n"
    if verb == "pool-info":
        return (0, "Name: default\n") if state["pool"] else (1, "")
    if verb in ("pool-define-as", "pool-build", "pool-start", "pool-autostart"):
        state["pool"] = True
        return 0, ""
    if verb == "vol-create-as":
        volumes[rest[1]] = f"{POOL_DIR}/{rest[1]}"
        return 0, ""
    if verb == "vol-upload":
        return (0, "") if rest[-2] in volumes else (1, "")
    if verb == "vol-path":
        return (0, volumes[rest[-1]] + "\n") if rest[-1] in volumes else (1, "")
    if verb == "vol-list":
        return (0, "".join(f" {n}  {p}\n" for n, p in sorted(volumes.items()))) if state["pool"] else (1, "")
    if verb == "vol-delete":
        name = next((n for n, p in volumes.items() if rest[-1] in (n, p)), None)
        if name is None:
            return 1, ""
        del volumes[name]
        return 0, ""
    if verb == "list":
        return 0, "".join(f"{n}\n" for n in sorted(domains))
    name = next((n for n, d in domains.items() if rest and rest[0] in (n, d["id"])), None)
    if name is None:
        return 1, ""
    if verb == "destroy":
        domains[name]["state"] = "shut off"
    elif verb == "undefine":
        del domains[name]
    elif verb == "domblklist":
        return 0, "".join(f" file disk vda {d}\n" for d in domains[name]["disks"])
    elif verb == "desc":
        return 0, domains[name]["desc"] + "\n"
    elif verb == "domstate":
        return 0, domains[name]["state"] + "\n"
    return 0, ""


def _vagrant(db: Libvirt, args: list[str]) -> int:
    project = Path.cwd()
    if args[:1] == ["up"]:
        prefix = re.search(r'default_prefix = "([^"]*)"', (project / "Vagrantfile").read_text())
        name = f"{prefix[1] if prefix else 'x-'}default"
        db.define(name, str(project / "Vagrantfile"))
        ids = project / ".vagrant/machines/default/libvirt"
        ids.mkdir(parents=True, exist_ok=True)
        (ids / "id").write_text(db.read()["domains"][name]["id"])
        while True:  # the guest boots until someone stops it
            time.sleep(1)
    if args[:1] == ["destroy"]:
        def destroy(state: dict[str, Any]) -> None:
            for name, dom in list(state["domains"].items()):
                if dom["desc"] == f"Source: {project / 'Vagrantfile'}":
                    del state["domains"][name]
                    for disk in dom["disks"]:
                        state["volumes"] = {n: p for n, p in state["volumes"].items() if p != disk}
        db.change(destroy)
    return 0


def main(argv: list[str]) -> int:
    db = Libvirt(Path(os.environ[STATE_ENV]))
    program, args = argv[0], argv[1:]
    db.change(lambda s: s["log"].append([program, *args]))
    if program == "vagrant":
        return _vagrant(db, args)

    def run(state: dict[str, Any]) -> tuple[int, str]:
        return _virsh(state, args)

    rc, out = db.change(run)
    sys.stdout.write(out)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Build one image: check, run FAI in a private work directory, publish the result atomically.

The image, its manifest (`NAME.json`) and the build log (`NAME.build.log`) appear in the output
directory only when the build succeeded; a failed build leaves its log there and nothing else.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..filelock import exclusive
from ..shipped import fai_config_space
from . import fai, host, invm, manifest
from .errors import BuildError
from .spec import BuildSpec
from .vagrantbox import make_box

#: FAI keeps one "installation in progress" stamp per host: builds on one host take turns.
LOCK = Path("/run/lock/debian-cloud-tests-fai.lock")


@dataclass(frozen=True)
class BuildResult:
    image: Path
    manifest: Path
    log: Path
    sha256: str


def build(spec: BuildSpec, output: Path, cspace: Path | None = None, in_vm: bool = False) -> BuildResult:
    """Build *spec* into *output* from *cspace* (default: the shipped one); raise a typed error
    (one line, own exit code) on failure."""
    cspace = (cspace or fai_config_space()).resolve()
    if in_vm:
        host.check_vm_host(spec)
    else:
        host.check_native(spec)
        host.check_root()
        host.check_programs()
    host.check_config_space(cspace, spec.classes())
    output.mkdir(parents=True, exist_ok=True)
    host.check_space(output, spec)
    started = dt.datetime.now(dt.UTC)
    image = output / f"{spec.name}.{spec.suffix}"
    log = output / f"{spec.name}.build.log"
    # FAI keeps one stamp per host: native builds take turns; each VM is a host of its own
    with (contextlib.nullcontext() if in_vm else exclusive(LOCK),
          tempfile.TemporaryDirectory(prefix=".dct-build-", dir=output) as tmp):
        work = Path(tmp)
        raw = work / f"{spec.name}.raw"
        try:
            run = invm.run(spec, cspace, raw, log) if in_vm else fai.run(spec, cspace, raw, log)
            pkgs = manifest.packages(raw)
            if spec.fmt == "qcow2":
                # the conversion fai-diskimage makes for a .qcow2 name, after reading the raw disk
                _run(["qemu-img", "convert", "-f", "raw", "-c", "-O", "qcow2", str(raw), str(work / "out")])
                raw.unlink()
                if spec.vendor == "vagrant":
                    make_box(work / "out", work / "out.box")
                    (work / "out").unlink()
                    (work / "out.box").replace(image)
                else:
                    (work / "out").replace(image)
            else:
                raw.replace(image)
        finally:
            fai.release(raw)
    digest = manifest.sha256(image)
    meta = output / f"{spec.name}.json"
    manifest.write(meta, spec, image, pkgs, digest, cspace, log, run, started)
    return BuildResult(image=image, manifest=meta, log=log, sha256=digest)


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BuildError(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")

"""Run `fai-diskimage`, and leave no loop device, mount or temporary file behind however it ends.

fai-diskimage cleans up after itself when FAI fails, but not when it is killed; the driver runs it
in its own session and, however it ended, finds what it may have left from the image file: the
loop devices backed by it, every mount of their partitions and everything mounted below those
(proc, sys, dev in the chroot), and fai-diskimage's empty mount point.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .. import mounts, procgroup
from .errors import BuildError
from .spec import BuildSpec

#: FAI prints where it keeps this run's logs (error.log, software.log, …) as its last words.
_LOGDIR = re.compile(r"^Log files are saved in (\S+)", re.M)
_TASK_ERROR = re.compile(r"^Exit code task_(\w+): (\d+)", re.M)
_APT_ERROR = re.compile(r"^E: (.+)$", re.M)


@dataclass(frozen=True)
class FaiRun:
    """What the driver needs from a finished fai-diskimage run."""

    logdir: str
    fai_version: str


def installed_version() -> str:
    """The version of FAI on this host, for the manifest of a build run here."""
    proc = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "fai-client"],
                          capture_output=True, text=True, check=False)
    return proc.stdout.strip() or "unknown"


def command(spec: BuildSpec, cspace: Path, raw: Path) -> list[str]:
    """The fai-diskimage command line; the benchmark times this same command without the driver."""
    return ["fai-diskimage", "-v", "-u", "localhost", "-S", spec.size, "-c", ",".join(spec.classes()),
            "-s", str(cspace.resolve()), str(raw)]


def run(spec: BuildSpec, cspace: Path, raw: Path, log: Path) -> FaiRun:
    """Run FAI into *raw*, its whole output into *log*; raise BuildError with its first error."""
    env = {**os.environ, "LC_ALL": "C"}
    with log.open("wb") as out:
        proc = subprocess.Popen(command(spec, cspace, raw), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        try:
            rc = proc.wait()
        except BaseException:
            procgroup.stop(proc)
            raise
        finally:
            release(raw)
    text = log.read_text(errors="replace")
    if rc != 0 or not raw.exists():
        raise BuildError(f"fai-diskimage failed (exit {rc}): {first_error(text)}; log: {log}")
    return FaiRun(logdir=logdir(text), fai_version=installed_version())


def logdir(text: str) -> str:
    """Where FAI kept this run's own logs, from its output ("" if it did not say)."""
    found = _LOGDIR.findall(text)
    return found[-1] if found else ""


def first_error(text: str) -> str:
    """The line that says what went wrong, from FAI's verbose output."""
    apt = _APT_ERROR.findall(text)
    tasks = [(t, c) for t, c in _TASK_ERROR.findall(text) if c != "0"]
    parts = [f"task {t} exited {c}" for t, c in tasks[:1]] + apt[:1]
    if not parts:
        parts = [line for line in text.splitlines() if "ERROR" in line or "FAILED" in line][:1]
    return "; ".join(parts) or "no error line in the output"


def release(raw: Path) -> None:
    """Unmount what FAI mounted from *raw*'s loop devices (deepest first), then detach them."""
    loops = loops_of(raw)
    roots = [mnt for src, mnt in mounts.mounts() if any(src == d or src.startswith(d + "p") for d in loops)]
    for root in roots:
        mounts.unmount_under(root)
        if Path(root).name.startswith("fai-diskimage."):
            with contextlib.suppress(OSError):
                Path(root).rmdir()
    for dev in loops:
        subprocess.run(["losetup", "-d", dev], capture_output=True, check=False)
    _drop_stale_stamp()


def _drop_stale_stamp() -> None:
    """A killed FAI leaves its "installation in progress" stamp, which blocks the next build."""
    stamp = Path("/var/run/fai/FAI_INSTALLATION_IN_PROGRESS")
    try:
        pid = int(stamp.read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        stamp.unlink(missing_ok=True)


def loops_of(raw: Path) -> list[str]:
    """Loop devices whose backing file is *raw* (also after it was deleted)."""
    proc = subprocess.run(["losetup", "-n", "-O", "NAME,BACK-FILE", "-l"], capture_output=True,
                          text=True, check=False)
    target = str(raw.resolve())
    return [line.split(None, 1)[0] for line in proc.stdout.splitlines()
            if len(line.split(None, 1)) == 2 and line.split(None, 1)[1].removesuffix(" (deleted)") == target]

"""Whole demo from a clean checkout, with a warm image cache: the README's main job, timed.

The checkout is a fresh `git clone` of this repository's HEAD into a temporary directory,
installed into a virtualenv that sees the system's packages (only pip's build backend is
fetched, untimed), and the timed part is exactly `debian-cloud-tests demo` run from it: image
from the cache, boot, every suite, the gate.  Run it once beforehand (or with --warm) so the
cache holds the test image.

    python3 benchmarks/demo.py [--runs 3] [--warm]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from qemu_fleet import machine_facts

REPO = Path(__file__).resolve().parent.parent


def clean_checkout(where: Path) -> Path:
    """HEAD of this repository, cloned and installed into a virtualenv of its own."""
    checkout = where / "checkout"
    subprocess.run(["git", "clone", "-q", str(REPO), str(checkout)], check=True)
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    # the dependencies come from the system's packages; the build backend (setuptools, wheel)
    # is fetched into pip's isolated build environment, as `pip install -e .` does everywhere
    subprocess.run([str(venv / "bin/pip"), "install", "-q", "--no-deps", "-e", str(checkout)],
                   check=True)
    return venv / "bin/debian-cloud-tests"


def one_demo(command: Path, output: Path) -> tuple[float, int, dict[str, int]]:
    """Seconds, exit status and the JUnit outcome counts of one `debian-cloud-tests demo`."""
    started = time.monotonic()
    proc = subprocess.run([str(command), "demo", "--output", str(output)], capture_output=True,
                          text=True, cwd=output.parent)
    seconds = time.monotonic() - started
    counts = {"passed": 0, "failed": 0, "skipped": 0, "error": 0}
    junit = output / "demo.xml"
    if junit.exists():
        for case in ET.parse(junit).iter("testcase"):
            kinds = {child.tag for child in case}
            kind = next((k for k in ("failure", "error", "skipped") if k in kinds), "passed")
            counts[{"failure": "failed"}.get(kind, kind)] += 1
    if proc.returncode not in (0, 1):
        print(proc.stdout[-2000:], proc.stderr[-2000:], sep="\n", file=sys.stderr)
    return seconds, proc.returncode, counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--warm", action="store_true", help="run one untimed demo first")
    args = parser.parse_args()
    print(f"machine: {machine_facts()}")
    with tempfile.TemporaryDirectory(prefix="dct-demo-bench-") as tmp:
        where = Path(tmp)
        command = clean_checkout(where)
        if args.warm:
            one_demo(command, where / "warm")
        times = []
        for run in range(args.runs):
            seconds, rc, counts = one_demo(command, where / f"run{run}")
            times.append(seconds)
            print(f"demo {run + 1}: {seconds:.1f} s, exit {rc} "
                  f"({'publish' if rc == 0 else 'hold'}); checks: {counts}")
    print(f"whole demo from a clean checkout, warm image cache: median {statistics.median(times):.1f} s "
          f"over {len(times)} run(s), range {min(times):.1f}-{max(times):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

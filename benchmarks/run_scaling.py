#!/usr/bin/env python3
"""Print how whole runs scale through the command line: `debian-cloud-tests run --instances N`
(N machines booted and tested at once, each its own pytest session and JUnit file) against one
instance's run, measured in the same invocation.

Efficiency = N x T(1) / T(N) / N; the target is >= 0.8.  Each run is the suites as bvt_figures.py
runs them (all but reboot and uniqueness, with this host's local CAs for the apt check).  Under
TCG the guests share the host's cores, so the figure says as much about the host as the code.

Usage: python3 benchmarks/run_scaling.py [--image IMAGE] [--counts 1,2] [--instance-type 1x1024]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qemu_fleet import image_to_measure, machine_facts, print_efficiency

from debian_cloud_tests.paths import local_ca_certs
from debian_cloud_tests.plugin import suites_dir


def time_run(image: Path, count: int, instance_type: str) -> tuple[float, int, str]:
    """Wall seconds of one `run --instances count`, its exit code and its per-run summaries."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "debian_cloud_tests.cli", "run", f"--image={image}",
               f"--instances={count}", f"--output={tmp}/out", "--name=scaling", "--",
               f"--instance-type={instance_type}", *(f"--ca-cert={c}" for c in local_ca_certs()),
               f"--ignore={suites_dir() / 'reboot'}", f"--ignore={suites_dir() / 'uniqueness'}"]
        begin = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
        wall = time.monotonic() - begin
    # one line per run of several; pytest's own summary for a single one
    summaries = (re.findall(r"^debian-cloud-tests: (qemu-\d+: .*?) JUnit", proc.stdout, re.M)
                 or re.findall(r"^=+ (.+ in [\d.]+s)", proc.stdout, re.M)[-1:])
    return wall, proc.returncode, "; ".join(summaries) or proc.stdout[-300:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image")
    parser.add_argument("--counts", default="1,2")
    parser.add_argument("--instance-type", default="1x1024",
                        help="qemu VCPUSxMEMORY_MIB for every instance (default 1x1024)")
    args = parser.parse_args()
    counts = sorted({int(c) for c in args.counts.split(",")} | {1})
    image = image_to_measure(args.image)
    results = {}
    for count in counts:
        wall, rc, summary = time_run(image, count, args.instance_type)
        results[count] = wall
        print(f"N={count}: {wall:.1f} s, exit {rc} ({summary})", flush=True)
    print(f"machine: {machine_facts()}, image {image.name}, instance type {args.instance_type}")
    print_efficiency(results, "whole runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())

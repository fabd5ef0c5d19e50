"""How much time the build driver adds to plain `fai-diskimage` on the same config space and classes.

The driver's work beyond FAI is its checks, reading the package list from the image, hashing it
and writing the manifest; the target is at most 5 %.  Both runs write a raw image (the same
fai-diskimage command line), alternating, so that a warm apt cache favours neither.

    sudo python3 benchmarks/fai_overhead.py [--runs N] [--release bookworm] [--vendor genericcloud]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qemu_fleet import machine_facts

from debian_cloud_tests.faibuild import fai
from debian_cloud_tests.faibuild.driver import build
from debian_cloud_tests.faibuild.spec import BuildSpec
from debian_cloud_tests.shipped import fai_config_space


def plain(spec: BuildSpec, work: Path) -> float:
    raw = work / "plain.raw"
    start = time.monotonic()
    proc = subprocess.run(fai.command(spec, fai_config_space(), raw), stdout=subprocess.DEVNULL,
                          stderr=subprocess.STDOUT, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"plain fai-diskimage failed ({proc.returncode})")
    raw.unlink()
    return elapsed


def driver(spec: BuildSpec, work: Path) -> float:
    out = work / "driver"
    start = time.monotonic()
    build(spec, out)
    elapsed = time.monotonic() - start
    shutil.rmtree(out)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--release", default="bookworm")
    parser.add_argument("--vendor", default="genericcloud")
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp"), help="where the images go")
    args = parser.parse_args()
    spec = BuildSpec(args.release, args.vendor, "amd64", fmt="raw")
    plain_times: list[float] = []
    driver_times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="dct-bench-", dir=args.dir) as tmp:
        for i in range(args.runs):
            first, second = (plain, driver) if i % 2 == 0 else (driver, plain)
            for fn in (first, second):
                t = fn(spec, Path(tmp))
                (plain_times if fn is plain else driver_times).append(t)
                print(f"run {i + 1}: {fn.__name__:<6} {t:7.1f} s", flush=True)
    p, d = sum(plain_times) / len(plain_times), sum(driver_times) / len(driver_times)
    # FAI runs on this host, not in a guest: the accel is what a run here would get, for context
    print(f"machine: {machine_facts()}; {args.release} {args.vendor} amd64 raw, {args.runs} run(s) each, "
          "FAI native (no VM)")
    print(f"plain fai-diskimage: {p:.1f} s")
    print(f"driver (build):      {d:.1f} s")
    print(f"ratio driver/plain:  {d / p:.3f} (overhead {100 * (d / p - 1):+.1f} %, target <= 5 %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

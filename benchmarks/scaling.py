#!/usr/bin/env python3
"""Print how launching N instances at once scales: wall time until all N are ready (SSH
verified, cloud-init done) against one instance's, measured in the same run.

Efficiency = N x T(1) / T(N) / N; the target is >= 0.8 (N boots in little more than one boot's
wall time).  On a cloud the boots happen elsewhere and overlap fully; on a local host under TCG
they share its cores, which this figure shows honestly.

Usage: python3 benchmarks/scaling.py [--image IMAGE] [--counts 1,2,3] [--instance-type 1x1024]
(builds the bookworm test image first if no image is given; needs root for that).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from qemu_fleet import image_to_measure, print_efficiency, qemu_fleet


def time_launch(image: Path, count: int, instance_type: str | None
                ) -> tuple[float, list[float], str]:
    """Seconds until *count* machines launched together are all ready, each one's boot, and
    the acceleration used."""
    with qemu_fleet(image, instance_type=instance_type) as fleet:
        begin = time.monotonic()
        instances = fleet.launch_many(count)
        wall = time.monotonic() - begin
        accel = str(instances[0].machine.properties().get("accel", "?"))
        return wall, [inst.ready.boot_seconds for inst in instances], accel


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image")
    parser.add_argument("--counts", default="1,2,3")
    parser.add_argument("--instance-type", help="qemu VCPUSxMEMORY_MIB for every instance")
    args = parser.parse_args()
    counts = sorted({int(c) for c in args.counts.split(",")} | {1})
    image = image_to_measure(args.image)
    accel = "?"
    results = {}
    for count in counts:
        wall, boots, accel = time_launch(image, count, args.instance_type)
        results[count] = wall
        print(f"N={count}: all ready in {wall:.1f} s (SSH-ready per instance: "
              f"{', '.join(f'{b:.1f}' for b in boots)} s)", flush=True)
    print(f"machine: {os.cpu_count()} cores, accel {accel}, image {image.name}, "
          f"instance type {args.instance_type or 'default'}")
    print_efficiency(results, "scaling")
    return 0


if __name__ == "__main__":
    sys.exit(main())

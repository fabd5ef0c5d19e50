#!/usr/bin/env python3
"""Print what the upgrade suite costs beside the others: QEMU runs of it on the bookworm test
image of the release's own kernel against the test repository (-security's kernel), split into
apt's work, the reboot and the checks, against the other suites' 8 s after ready (bvt_figures.py).

Usage: python3 benchmarks/upgrade_cost.py [--runs N] [--instance-type VCPUSxMIB]
(builds the test image and the repository first if not cached; needs root for that).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from debian_cloud_tests.plugin import suites_dir
from debian_cloud_tests.testimage import upgrade_repo
from debian_cloud_tests.testimage.builder import Recipe, build_image

OTHERS_TARGET = 8.0  # the other suites' seconds after ready (README, Figures)


def one_run(image: Path, repo: upgrade_repo.UpgradeRepo, instance_type: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--provider=qemu",
             f"--image={image}", f"--instance-type={instance_type}", "--qemu-network=isolated",
             *repo.options(), f"--artifacts-dir={tmp}/artifacts", f"--junitxml={tmp}/run.xml",
             str(suites_dir() / "upgrade")], capture_output=True, text=True, cwd=tmp)
        report = Path(tmp) / "run.xml"
        props = ({p.get("name", ""): p.get("value", "") for p in ET.parse(report).iter("property")}
                 if report.exists() else {})
    m = re.search(r"(\d+) checks in ([\d.]+)s after ready \(boot to ssh ([\d.]+)s", proc.stdout)
    if proc.returncode != 0 or not m or "upgrade_apt_seconds" not in props:
        raise SystemExit(f"the upgrade run failed (rc {proc.returncode}):\n{proc.stdout[-1500:]}")
    return {"checks": float(m.group(1)), "after_ready": float(m.group(2)),
            "boot": float(m.group(3)), "apt": float(props["upgrade_apt_seconds"]),
            "reboot": float(props.get("upgrade_reboot_seconds", "nan"))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--instance-type", default="1x1024")
    args = parser.parse_args()
    recipe = Recipe(kernel="release")  # bookworm's own kernel, upgraded to -security's
    image = build_image(recipe)
    repo = upgrade_repo.build(recipe)
    runs = [one_run(image, repo, args.instance_type) for _ in range(max(1, args.runs))]

    def median(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    after = median("after_ready")
    print(f"machine: {os.cpu_count()} cores, instance type {args.instance_type}, image {image.name}, "
          f"new kernel {repo.kernel}, {len(runs)} run(s)")
    print(f"upgrade suite: {int(median('checks'))} checks in {after:.1f} s after ready (median): "
          f"apt update + full-upgrade {median('apt'):.1f} s, reboot to SSH {median('reboot'):.1f} s, "
          f"the rest (before and after reads, bvt's every-boot checks) "
          f"{after - median('apt') - median('reboot'):.1f} s")
    print(f"against the other suites' {OTHERS_TARGET:.0f} s after ready: {after / OTHERS_TARGET:.0f} "
          "times as long")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""CI's wall time: `bash .ci/run` on a clean clone, from a cold image cache and then a warm one.

The clone is a fresh `git clone` of this repository's HEAD; its image cache is a new empty
directory (DCT_CACHE_DIR), so the cold run builds every test image as a new CI machine does, and
the warm run that follows reuses them.  Prints each run's duration, pytest's closing line, the
slowest tests as pytest's `--durations` reports them, the tests' summed time (what the two workers
carried) and how busy the host's cores were: a run whose cores idle waits rather than computes.
It takes as long as CI does (most of an hour per run on 2 cores); run it on an otherwise idle
machine.

    python3 benchmarks/ci_time.py [--runs cold,warm] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SLOWEST = 15


def cpu_times() -> tuple[int, int]:
    """The host's (busy, total) CPU ticks since boot, all cores."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle and iowait
    return sum(ticks) - idle, sum(ticks)


def run_ci(checkout: Path, cache: Path, log: Path, junit: Path) -> tuple[float, int, float]:
    """Seconds, exit status and the cores' busy share of one `bash .ci/run` in *checkout*, its
    output in *log*, every test's time in *junit*."""
    env = {**os.environ, "CI": "true", "DCT_CACHE_DIR": str(cache)}
    busy, total = cpu_times()
    started = time.monotonic()
    with log.open("w") as out:  # not PYTEST_ADDOPTS: the pytest runs the tests start inherit it
        # SIGINT at its default, as for CI's job: started in the background this would ignore it
        proc = subprocess.run(["env", "--default-signal=INT", "bash", ".ci/run", f"--junitxml={junit}"],
                              cwd=checkout, env=env, stdout=out, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, check=False)
    busy_after, total_after = cpu_times()
    share = (busy_after - busy) / max(1, total_after - total)
    return time.monotonic() - started, proc.returncode, share


def summed_test_seconds(junit: Path) -> float:
    """What the workers carried: every test case's time, added up."""
    if not junit.exists():
        return 0.0
    return sum(float(case.get("time") or 0) for case in ET.parse(junit).iter("testcase"))


def closing_line(text: str) -> str:
    """pytest's last `=== … in …s ===` line."""
    lines = re.findall(r"^=+ (.* in [\d.]+s.*?) =+$", text, re.M)
    return lines[-1] if lines else "no pytest summary"


def slowest(text: str, count: int = SLOWEST) -> list[str]:
    """The first *count* lines of pytest's `slowest durations` section."""
    section = text.split("slowest", 1)[1] if "slowest" in text else ""
    rows = re.findall(r"^\s*([\d.]+s \w+\s+\S+)$", section, re.M)
    return rows[:count]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="cold,warm", help="which runs, in order (cold,warm)")
    parser.add_argument("--keep", type=Path, help="keep the clone, cache and logs here")
    args = parser.parse_args()
    runs = args.runs.split(",")
    if any(r not in ("cold", "warm") for r in runs):
        parser.error("--runs takes cold and/or warm")
    where = args.keep or Path(tempfile.mkdtemp(prefix="dct-ci-time-"))
    where.mkdir(parents=True, exist_ok=True)
    checkout, cache = where / "checkout", where / "cache"
    try:
        if not checkout.exists():
            subprocess.run(["git", "clone", "-q", str(REPO), str(checkout)], check=True)
        head = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        # nothing of the project is installed yet (a cold run installs it): the host's own facts
        print(f"commit {head}; {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
        for name in runs:
            if name == "cold":
                shutil.rmtree(cache, ignore_errors=True)
            cache.mkdir(exist_ok=True)
            log, junit = where / f"{name}.log", where / f"{name}.xml"
            seconds, rc, share = run_ci(checkout, cache, log, junit)
            text = log.read_text(errors="replace")
            print(f"\n{name} cache: {seconds:.0f} s ({seconds / 60:.1f} min), exit {rc}: "
                  f"{closing_line(text)}")
            print(f"tests' summed time {summed_test_seconds(junit):.0f} s; cores busy {share:.0%}")
            print(f"slowest {SLOWEST}:")
            for row in slowest(text):
                print(f"  {row}")
    finally:
        if args.keep is None:
            shutil.rmtree(where, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

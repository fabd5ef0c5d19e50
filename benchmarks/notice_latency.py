#!/usr/bin/env python3
"""Print how soon after the guest's sshd is up the run notices: the time from sshd listening
(systemd's activation of ssh.service, on the guest's clock mapped onto ours) and the host keys
being known, to our verified handshake.  Target: <= 1 s.

With ``--host-key-source=injected`` the keys are known from the start, so the figure is the
readiness loop's own latency; with the console as the source it also includes reading the
console.  Each boot is one sample.

Usage: python3 benchmarks/notice_latency.py [--image IMAGE] [--boots 2] [--host-key-source S]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from qemu_fleet import image_to_measure, qemu_fleet

from debian_cloud_tests.spec import HostKeySource

SSHD_ACTIVE = ("systemctl show -p ActiveEnterTimestampMonotonic --value ssh.service ssh.socket; "
               "cat /proc/uptime")


def sshd_up_on_our_clock(host) -> float:
    """time.monotonic() at which the guest's sshd became active: the guest's monotonic clock
    is read over SSH and mapped onto ours at the midpoint of the round trip."""
    before = time.monotonic()
    out = host.run(SSHD_ACTIVE).stdout.split()
    after = time.monotonic()
    *activations, uptime, _idle = out
    active = min(int(a) for a in activations if int(a) > 0) / 1e6
    return (before + after) / 2 - (float(uptime) - active)


def one_boot(image: Path, source: HostKeySource) -> tuple[float, float, float, str]:
    """(notice latency, SSH-ready seconds, keys known seconds, accel) for one boot."""
    with qemu_fleet(image, host_key_source=source) as fleet:
        began = time.monotonic()
        inst = fleet.launch()
        ready_at = began + inst.ready.boot_seconds
        keys_at = began + (inst.ready.keys_seconds or 0.0)
        sshd_at = sshd_up_on_our_clock(inst.host)
        accel = str(inst.machine.properties().get("accel", "?"))
        return (ready_at - max(sshd_at, keys_at), inst.ready.boot_seconds,
                inst.ready.keys_seconds or 0.0, accel)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image")
    parser.add_argument("--boots", type=int, default=2)
    parser.add_argument("--host-key-source", default="injected", choices=["injected", "console"])
    args = parser.parse_args()
    image = image_to_measure(args.image)
    latencies, accel = [], "?"
    for n in range(args.boots):
        latency, ready, keys, accel = one_boot(image, HostKeySource(args.host_key_source))
        latencies.append(latency)
        print(f"boot {n + 1}: SSH-ready at {ready:.1f} s, keys known at {keys:.1f} s, "
              f"noticed {latency:.2f} s after sshd was up", flush=True)
    print(f"machine: {os.cpu_count()} cores, accel {accel}, host keys from {args.host_key_source}")
    print(f"notice latency after sshd is up: median {statistics.median(latencies):.2f} s, "
          f"max {max(latencies):.2f} s over {len(latencies)} boots (target <= 1 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

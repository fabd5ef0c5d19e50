#!/usr/bin/env python3
"""Print how launching N cloud instances at once scales: wall time until all N are ready (launch
returned, SSH verified, cloud-init waited for) against one instance's, measured in the same run,
through the real providers and SDKs against the emulators in tests/fakes.

Every instance stays pending (GCE: STAGING) a fixed time after its create call, as a cloud's
instance does while it boots, and its guest is one real sshd on a loopback address (see
tests/fakes/sshd_guest.py), so the figure measures the plugin's scheduling of the launches, not
this host's CPU.  The providers poll as they do on a cloud (their own backoff and console
intervals, nothing shortened).  Speedup = N x T(1) / T(N); efficiency = T(1) / T(N), the speedup
per instance; the target is >= 0.8.

Usage: sudo python3 benchmarks/cloud_scaling.py [--counts 1,2,4] [--pending 5] [--providers aws,gce]
       [--repeats 3]
(root: the guest sshd listens on port 22 of its own loopback address).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402

from debian_cloud_tests.lifecycle import Fleet  # noqa: E402
from debian_cloud_tests.provider import Provider  # noqa: E402
from debian_cloud_tests.spec import Arch, KeepInstance, LaunchSpec  # noqa: E402
from tests.fakes.sshd import unavailable  # noqa: E402
from tests.fakes.sshd_guest import SshdGuest, running_sshd_guest  # noqa: E402

#: what to launch: the provider, its validated spec, and what is left in its emulator
Cloud = tuple[Provider, LaunchSpec, Callable[[], dict[str, list[str]]]]


@contextmanager
def aws_cloud(guest: SshdGuest, pending: float, work: Path) -> Iterator[Cloud]:
    """The aws provider against moto (server mode, in this process), instances pending *pending* s."""
    from debian_cloud_tests.providers.aws import AwsProvider, retry

    from tests.fakes.aws_world import make_world
    from tests.fakes.moto_ec2 import CheckIp, leftovers, running_moto
    from tests.fakes.sshd_guest import SshdMachines

    patch = pytest.MonkeyPatch()
    checkip = CheckIp()
    try:
        with running_moto() as moto:
            world = make_world(moto, patch, work, SshdMachines(guest), checkip)
            patch.setattr(retry, "sleep", time.sleep)  # make_world records sleeps: sleep them
            world.hooks.pending_seconds = pending
            provider = AwsProvider()
            spec = provider.validate(LaunchSpec(
                image=world.ami, arch=Arch.AMD64, run_id="cloud-scaling", ssh_user="root",
                boot_timeout=300, options={"region": world.region}))
            yield provider, spec, lambda: leftovers(moto)
    finally:
        patch.undo()
        checkip.shutdown()
        checkip.server_close()


@contextmanager
def gce_cloud(guest: SshdGuest, pending: float, work: Path) -> Iterator[Cloud]:
    """The gce provider against the Compute Engine fake, instances STAGING *pending* s."""
    from debian_cloud_tests.providers.gce import GceProvider
    from google.auth.credentials import AnonymousCredentials

    from tests.fakes.gce_compute import PROJECT, ZONE, running_gce

    patch = pytest.MonkeyPatch()
    patch.setenv("DCT_SOURCE_ADDRESS", "127.0.0.1")
    try:
        with running_gce() as fake:
            fake.staging_seconds = pending
            fake.nat_address = guest.address
            fake.console_text = "Booting Debian\n" + guest.console()
            fake.on_insert = guest.gce_insert
            provider = GceProvider(project=PROJECT, credentials=AnonymousCredentials(),
                                   endpoint=fake.url)
            spec = provider.validate(LaunchSpec(
                image="projects/debian-cloud/global/images/family/debian-12", arch=Arch.AMD64,
                run_id="cloud-scaling", ssh_user="root", boot_timeout=300, options={"zone": ZONE}))
            yield provider, spec, fake.leftovers
    finally:
        patch.undo()


CLOUDS = {"aws": aws_cloud, "gce": gce_cloud}


def time_launch(cloud: Cloud, count: int) -> tuple[float, list[float]]:
    """Seconds until *count* machines launched together are all ready, and each one's SSH-ready
    time; every machine is destroyed however the measurement ends, and the emulator checked."""
    provider, spec, leftovers = cloud
    fleet = Fleet(provider, spec, KeepInstance.NEVER)
    try:
        begin = time.monotonic()
        instances = fleet.launch_many(count)
        wall = time.monotonic() - begin
    finally:
        fleet.close(failed=False)
    left = leftovers()
    if left:
        raise SystemExit(f"LEAK: left in the emulator: {left}")
    return wall, [inst.ready.boot_seconds for inst in instances]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="1,2,4")
    parser.add_argument("--pending", type=float, default=5.0,
                        help="seconds each instance stays pending (its boot on the cloud)")
    parser.add_argument("--providers", default="aws,gce", help=f"of {', '.join(CLOUDS)}")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each N; medians are compared")
    args = parser.parse_args()
    counts = sorted({int(c) for c in args.counts.split(",")} | {1})
    names = [n for n in args.providers.split(",") if n]
    unknown = set(names) - set(CLOUDS)
    if unknown:
        parser.error(f"--providers: unknown {', '.join(sorted(unknown))}")

    why = unavailable()
    if why:
        print(f"cloud_scaling: cannot run the guest sshd: {why}", file=sys.stderr)
        return 2
    print(f"machine: {os.cpu_count()} cores, accel none: cloud fake (instances pending "
          f"{args.pending:g} s, guest: one sshd), load {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="dct-cloud-scaling-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        tempfile.tempdir = str(work)  # the fleets' run dirs land here, and go with it
        guest = stack.enter_context(running_sshd_guest(work / "guest"))
        for name in names:
            (work / name).mkdir()
            with CLOUDS[name](guest, args.pending, work / name) as cloud:
                runs: dict[int, list[float]] = {count: [] for count in counts}
                for _ in range(args.repeats):  # interleaved: a load spike hits every N alike
                    for count in counts:
                        wall, boots = time_launch(cloud, count)
                        runs[count].append(wall)
                        print(f"{name} N={count}: all ready in {wall:.2f} s (SSH-ready per "
                              f"instance: {', '.join(f'{b:.2f}' for b in boots)} s)", flush=True)
                walls = {count: statistics.median(runs[count]) for count in counts}
                for count in counts[1:]:
                    speedup = count * walls[1] / walls[count]
                    print(f"{name} scaling N={count} (medians of {args.repeats}): {walls[count]:.2f} s "
                          f"vs {walls[1]:.2f} s for one; "
                          f"speedup N x T1/TN = {speedup:.2f} (target >= {0.8 * count:.1f}), "
                          f"efficiency {speedup / count:.2f} (target >= 0.8)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the benchmarks share: the image to measure (given, or the test image built or taken
from the cache), a QEMU fleet for it that destroys its machines however the measurement ends,
and the machine facts every script prints with its figures (cores, accel, load)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from debian_cloud_tests.lifecycle import Fleet
from debian_cloud_tests.provider import get_provider
from debian_cloud_tests.rundir import new_run_id
from debian_cloud_tests.spec import Accel, Arch, KeepInstance, LaunchSpec
from debian_cloud_tests.testimage.builder import Recipe, build_image


def image_to_measure(given: str | None) -> Path:
    """*given*, else the bookworm test image (built first if not cached; needs root then)."""
    return Path(given) if given else build_image(Recipe())


@contextmanager
def qemu_fleet(image: Path, **spec: Any) -> Iterator[Fleet]:
    """A fleet launching *image* under QEMU (amd64; *spec* sets more LaunchSpec fields)."""
    provider = get_provider("qemu")
    fleet = Fleet(provider, provider.validate(LaunchSpec(
        image=str(image), arch=Arch.AMD64, run_id=new_run_id(), **spec)), KeepInstance.NEVER)
    try:
        yield fleet
    finally:
        fleet.close(failed=False)


def machine_facts() -> str:
    """Cores, the accelerator QEMU gets here (and why) and the load: a figure means little
    without them, so every script prints them the same way."""
    from debian_cloud_tests.providers.qemu.accel import choose

    from debian_cloud_tests.paths import cache_dir

    accel, why = choose(Accel.AUTO, Arch.AMD64, "qemu-system-x86_64", cache_dir())
    return f"{os.cpu_count()} cores, accel {accel.value} ({why}), load {os.getloadavg()[0]:.1f}"


def print_efficiency(walls: dict[int, float], what: str) -> None:
    """Each N's throughput against one's, measured in the same run (N * T1 / TN), and its share
    of the ideal N: the efficiency the scaling target (>= 0.8) is about."""
    for count in sorted(walls)[1:]:
        speedup = count * walls[1] / walls[count]
        print(f"{what} N={count}: {speedup:.2f}x one's throughput, efficiency "
              f"{speedup / count:.2f} (target >= 0.8)")

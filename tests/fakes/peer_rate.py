"""A pytest plugin putting a platform rate limit on the QEMU peer link (``-p
tests.fakes.peer_rate``): the relay between the two guests passes :data:`RATE` bytes per second
each way, as a cloud's NIC shaper would, for the throughput check's negative control."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from debian_cloud_tests.providers.qemu import QemuHooks
from debian_cloud_tests.providers.qemu.settings import QemuSettings

from debian_cloud_tests.plugin import STATE

#: 250 kB/s: 2 Mbit/s, far below what two guests reach under TCG
RATE = 250_000.0


def pytest_configure(config: Any) -> None:
    state = config.stash[STATE]
    settings = state.spec.settings_as(QemuSettings)
    hooks = replace(settings.hooks or QemuHooks(), peer_rate=RATE)
    state.spec = replace(state.spec, hooks=hooks, settings=replace(settings, hooks=hooks))

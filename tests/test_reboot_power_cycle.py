"""A platform that a reset does not wake is stopped and started once, and the guest comes back.

The hang is real, not simulated in our code: as the guest's kernel prints its restart line, its
QEMU is paused over QMP (`stop`). The guest's reset and the reboot's platform reset then leave a
paused machine paused and the console silent, as OVMF's hang under TCG does; only the power
cycle (QEMU stopped and started on the same disk and console) brings the guest back.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from debian_cloud_tests import reboot
from debian_cloud_tests.lifecycle import Fleet
from debian_cloud_tests.provider import get_provider
from debian_cloud_tests.rundir import new_run_id
from debian_cloud_tests.spec import Arch, KeepInstance, LaunchSpec

pytestmark = pytest.mark.e2e


def _pause_at_restart(machine, mark: int, stop: threading.Event) -> None:
    """Pause the guest's vCPUs the moment its kernel says it restarts the machine."""
    while not stop.is_set():
        text = machine.console_log()[mark:]
        if any(line in text for line in reboot.RESTART_LINES):
            machine.qmp.command("stop")
            return
        time.sleep(0.05)


@pytest.mark.matrix
@pytest.mark.cost(200)
def test_a_reset_that_does_not_wake_the_machine_is_followed_by_a_power_cycle(
        good_image: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reboot, "RESTART_SILENCE", 15.0)
    provider = get_provider("qemu")
    spec = provider.validate(LaunchSpec(image=str(good_image), arch=Arch.AMD64,
                                        run_id=new_run_id(), options={"qemu_network": "isolated"}))
    fleet = Fleet(provider, spec, KeepInstance.NEVER)
    stop = threading.Event()
    try:
        inst = fleet.launch()
        first_console = inst.machine.console_log()
        pid_before = inst.machine.pid
        pauser = threading.Thread(target=_pause_at_restart,
                                  args=(inst.machine, len(first_console), stop), daemon=True)
        pauser.start()
        outcome = reboot.reboot(inst, hard=False, timeout=400)
        stop.set()
        assert outcome.came_back, outcome.error
        assert not outcome.keys_changed
        assert outcome.platform_reset and "reset once" in outcome.platform_reset
        assert "stopped and started" in outcome.platform_reset, outcome.platform_reset
        assert inst.machine.pid != pid_before  # a new QEMU on the same disk
        assert inst.machine.console_log().startswith(first_console)  # the console kept its past
        assert outcome.hostname_after == outcome.hostname_before
    finally:
        stop.set()
        fleet.close(failed=False)

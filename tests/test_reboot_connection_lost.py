"""A guest going down can still let a login in and then drop it under the command: the reboot
asks again, and counts the machine back only on a new boot id it was told.

The guest is a real sshd whose commands a small script answers as a rebooting guest would
(sshd's ForceCommand): `systemctl reboot` sends it down, and while it is down each command's
connection is killed from the server's side, as systemd stopping sshd's sessions does.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from debian_cloud_tests.providers.ssh import SshProvider

from debian_cloud_tests import reboot
from debian_cloud_tests.lifecycle import Fleet, Instance
from debian_cloud_tests.spec import KeepInstance

from .fakes.sshd import running_sshd, spec_for, unavailable

GUEST = r"""#!/bin/sh
# A guest as its commands see it: STATE holds its boot id, or "down N ID" while it goes down
# (the next N commands lose their connection, then it is up again in boot ID).
set -- $(cat {state})
if [ "$1" = down ]; then
    if [ "$2" -le 1 ]; then echo "$3" > {state}; else echo "down $(($2 - 1)) $3" > {state}; fi
    pid=$$
    while [ "$pid" -gt 1 ]; do  # kill this session's sshd: the client sees its connection die
        pid=$(cut -d' ' -f4 /proc/$pid/stat)
        case $(cat /proc/$pid/comm) in sshd*) kill -9 "$pid"; sleep 5; exit 1;; esac
    done
    exit 1
fi
case "$SSH_ORIGINAL_COMMAND" in
    "sudo -n systemctl reboot") echo "down {drops} {new_boot}" > {state} ;;
    "cat /proc/sys/kernel/random/boot_id") echo "$1" ;;
    hostname) echo guest-1 ;;
    *is-system-running*) printf 'running\nguest-1\n' ;;
    *) exit 127 ;;
esac
"""


@pytest.fixture
def rebooting_guest(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Instance, Path, str]]:
    """A launched instance on that guest, the guest's state file, and the boot id it comes back in."""
    why = unavailable()
    if why:
        pytest.skip(why)
    state, script, new_boot = tmp_path / "state", tmp_path / "guest.sh", str(uuid.uuid4())
    state.write_text(f"{uuid.uuid4()}\n")
    script.write_text(GUEST.format(state=state, drops=request.param, new_boot=new_boot))
    script.chmod(0o755)
    with running_sshd(tmp_path / "sshd", extra_config=f"ForceCommand {script}\n") as server:
        provider = SshProvider()
        spec = provider.validate(spec_for(server))
        fleet = Fleet(provider, spec, KeepInstance.NEVER)
        try:
            yield fleet.launch(), state, new_boot
        finally:
            fleet.close(failed=False)


@pytest.mark.parametrize("rebooting_guest", [1, 3], indirect=True)
def test_connections_lost_while_the_guest_goes_down_are_asked_again(rebooting_guest) -> None:
    inst, state, new_boot = rebooting_guest
    outcome = reboot.reboot(inst, hard=False, timeout=30)
    assert outcome.came_back, outcome.error
    assert state.read_text().strip() == new_boot  # every lost command was asked again
    assert (outcome.hostname_after, outcome.system_state) == ("guest-1", "running")
    assert outcome.error is None and not outcome.keys_changed


@pytest.mark.parametrize("rebooting_guest", [1000], indirect=True)
def test_a_guest_that_never_answers_again_has_not_come_back(rebooting_guest) -> None:
    """Logins that always die under the command are no return, however many: the reboot waits
    out its timeout and says so, it does not raise."""
    inst, state, _ = rebooting_guest
    outcome = reboot.reboot(inst, hard=False, timeout=6)
    assert not outcome.came_back
    assert "did not come back within 6s" in (outcome.error or "")
    assert state.read_text().startswith("down ")

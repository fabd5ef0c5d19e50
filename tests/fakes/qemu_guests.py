"""Real QEMU guests behind an emulated cloud's instances, shared by the EC2 and Nova emulators.

Each guest is reached as the cloud would publish it: SSH is forwarded from its own loopback
address (``127.x.y.z:22``), which the emulator hands out as the instance's address, so the provider
connects as it would to a cloud instance and needs no test-only override.  The guest's user network
is 169.254.169.0/24 with 169.254.169.254:80 relayed to the emulator's metadata server, and it is
restricted: the guest reaches nothing but its metadata service.  SMBIOS tells cloud-init which
cloud it is on; no NoCloud seed is attached.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from debian_cloud_tests.providers.qemu import QemuHooks, QemuProvider, accel
from debian_cloud_tests.providers.qemu.firmware import PLATFORMS
from debian_cloud_tests.providers.qemu.machine import QemuMachine

from debian_cloud_tests.datasources.relay import command as relay_command
from debian_cloud_tests.paths import cache_dir
from debian_cloud_tests.provider import EMULATED_BOOT_BUDGET
from debian_cloud_tests.rundir import RunDir
from debian_cloud_tests.spec import Accel, Arch, LaunchSpec


class MetadataServer(Protocol):
    @property
    def port(self) -> int: ...

    def stop(self) -> None: ...


@dataclass
class Guest:
    instance_id: str
    address: str
    machine: QemuMachine
    run_dir: RunDir
    metadata: MetadataServer
    stopped: bool = False


def assert_gone(guest: Guest, run_id: str) -> None:
    """Nothing of *guest* or of the plugin run *run_id* is left on this machine."""
    assert guest.stopped and not guest.machine.is_alive()
    assert not guest.run_dir.path.exists()
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob(f"dct-run-{run_id}-*"))


#: the widest port range a rule may open for it to be forwarded (QEMU forwards port by port)
MAX_FORWARDED_PORTS = 16
#: open: the relay QEMU runs for the metadata service reaches it on this host's loopback
GUEST_OPTIONS = {"qemu_network": "open"}


def guest_hooks(address: str, mac: str, metadata_port: int, smbios: tuple[str, ...],
                restrict: bool = True) -> QemuHooks:
    """The QEMU provider's hooks for a guest seen as a cloud instance (see the module doc); *smbios*
    its -smbios values (datasources.emulation's for each cloud).

    *restrict* False keeps the user network's router and DNS, for a guest in a network namespace
    of the test's own that must resolve its metadata service by name."""
    relay = relay_command(metadata_port)
    walled = "restrict=on," if restrict else ""
    return QemuHooks(seed=False, ssh_listen=(address, 22), mac=mac,
                     smbios=smbios,
                     user_net=f"net=169.254.169.0/24,{walled}guestfwd=tcp:169.254.169.254:80-{relay}")


class QemuGuests:
    """The guests by instance id: boot, reset, console, stop; whatever is left stops at close."""

    def __init__(self, label: str, enter: Callable[[], None] | None = None) -> None:
        """*enter* runs first in the thread that starts QEMU (e.g. to join a namespace)."""
        self.label = label
        self.images: dict[str, Path] = {}  # the cloud's image id -> the local image it boots
        self.guests: dict[str, Guest] = {}
        self.consoles: dict[str, str] = {}  # what stopped guests printed
        self.resets: list[str] = []  # the instance of every reset the cloud asked for, in order
        # QEMU is started with PR_SET_PDEATHSIG, which fires when the *thread* that forked it
        # ends: an emulator's request threads are short-lived, this one lives as long as it does.
        self._launcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{label}-qemu",
                                            initializer=enter)
        self._prefix = f"127.{random.randint(100, 199)}.{random.randint(0, 255)}"
        self._count = 0
        # stopped while its guest was still being started (a run killed mid-create, its guard
        # quicker than QEMU): the guest is stopped as soon as it exists
        self._stopped_early: set[str] = set()
        self._lock = threading.Lock()
        #: a cloud network's forwards in place (see set_forwards): instance id -> (address, port)s
        self.forwards: dict[str, set[tuple[str, int]]] = {}
        #: every forward ever added, by instance id (the forwards end with the guests)
        self.forwards_seen: dict[str, set[tuple[str, int]]] = {}

    def next_address(self) -> str:
        with self._lock:
            self._count += 1
            return f"{self._prefix}.{self._count}"

    def boot(self, instance_id: str, address: str, spec: LaunchSpec, metadata: MetadataServer) -> Guest:
        """Boot *spec* for *instance_id*; *metadata* is stopped with the guest (or now, on failure)."""
        try:
            guest = self._launcher.submit(self._boot, instance_id, address, spec, metadata).result()
        except BaseException:
            metadata.stop()
            raise
        with self._lock:
            self.guests[instance_id] = guest
            early = instance_id in self._stopped_early
        if early:
            self.stop(instance_id)
        return guest

    def _boot(self, instance_id: str, address: str, spec: LaunchSpec, metadata: MetadataServer) -> Guest:
        run_dir = RunDir(f"{self.label}-{instance_id}")
        try:
            provider = QemuProvider()
            machine = provider.launch(provider.validate(spec), run_dir.path)
        except BaseException:
            run_dir.close()
            raise
        assert isinstance(machine, QemuMachine)
        return Guest(instance_id, address, machine, run_dir, metadata)

    def set_forwards(self, instance_id: str, wanted: set[tuple[str, int]]) -> None:
        """Make the TCP forwards into *instance_id*'s guest exactly *wanted*: each (address, port)
        of this host (in the test's namespace: a cloud network's private address, added to its
        loopback by the emulator) forwarded to that port of the guest.  This is how an emulator
        lets one guest reach another's private address on a port its firewall opens: the
        first goes out through its user network into the namespace, in through the forward."""
        guest = self.guests.get(instance_id)
        if guest is None or guest.stopped:
            return
        have = self.forwards.setdefault(instance_id, set())
        for address, port in sorted(wanted - have):
            _hmp(guest.machine, f"hostfwd_add net0 tcp:{address}:{port}-:{port}")
            self.forwards_seen.setdefault(instance_id, set()).add((address, port))
        for address, port in sorted(have - wanted):
            _hmp(guest.machine, f"hostfwd_remove net0 tcp:{address}:{port}")
        self.forwards[instance_id] = set(wanted)

    def reboot(self, instance_id: str) -> None:
        """A reset of the machine (a cloud's soft reboot asks the guest first; a test that needs
        that difference reboots from inside the guest)."""
        guest = self.guests.get(instance_id)
        if guest is not None and not guest.stopped:
            guest.machine.hard_reset()
            self.resets.append(instance_id)

    def stop(self, instance_id: str) -> None:
        with self._lock:
            guest = self.guests.get(instance_id)
            if guest is None:
                self._stopped_early.add(instance_id)
                return
            if guest.stopped:
                return
            guest.stopped = True
        self.consoles[instance_id] = guest.machine.console_log()
        errors = guest.machine.destroy()
        guest.run_dir.close()
        guest.metadata.stop()
        if errors:
            raise RuntimeError(f"stopping {instance_id}: {errors}")

    def console(self, instance_id: str) -> str:
        guest = self.guests.get(instance_id)
        if guest is None:
            return ""
        return self.consoles.get(instance_id, "") if guest.stopped else guest.machine.console_log()

    def close(self) -> None:
        """Stop whatever is still running (a test that failed half-way)."""
        for instance_id in list(self.guests):
            self.stop(instance_id)
        self._launcher.shutdown()


def qemu_processes(pids: list[int]) -> list[int]:
    """Those of *pids* that are QEMU (a namespace's processes, after a test: none should be)."""
    found = []
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/comm").read_text().startswith("qemu"):
                found.append(pid)
        except OSError:
            pass
    return found


def _hmp(machine: QemuMachine, command: str) -> None:
    said = (machine.qmp.command("human-monitor-command", **{"command-line": command}) or "").strip()
    if said and not said.endswith(" removed"):  # what HMP says of a forward added or removed
        raise RuntimeError(f"{command}: {said}")


def emulated() -> bool:
    """Whether the guests run emulated (TCG: no working KVM here), so boot several times slower
    than a cloud instance, whose hardware virtualisation KVM stands in for."""
    chosen, _ = accel.choose(Accel.AUTO, Arch.AMD64, PLATFORMS[Arch.AMD64].binary, cache_dir())
    return chosen is Accel.TCG


def boot_budget_options() -> list[str]:
    """A cloud's boot budget assumes hardware virtualisation: emulated guests get the budget of
    an emulated machine, as the qemu provider gives its own, from the command line as a user on
    slow hardware would."""
    return [f"--boot-budget={EMULATED_BOOT_BUDGET:.0f}"] if emulated() else []

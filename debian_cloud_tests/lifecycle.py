"""The lifetime of the machines of one run: launch, wait until ready, and always destroy.

Every machine is registered the moment the provider returns it, so an interruption at any point
(Ctrl-C during boot included) still destroys it; its run dir is guarded by a separate process
(see :mod:`rundir`) for the cases where this process gets no chance to clean up.

Several machines are launched together.  A provider whose launches may overlap
(:attr:`Provider.concurrent_launches`: the clouds, whose launch blocks until the instance runs)
has each launch and its readiness wait run in a thread of its own, so N launches take about one;
the others (QEMU: a QEMU dies with the thread that started it) start machines one after the other
from the calling thread and only wait in threads.  A launch still in flight when the fleet is
closed (Ctrl-C) destroys its machine itself the moment the provider hands it back, and
:meth:`Fleet.close` waits for it.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import readiness, ssh, sshhost, sshkeys
from .errors import CleanupError, DCTError, note_cleanup_failures
from .machine import Machine
from .provider import Provider
from .rundir import RunDir
from .spec import KeepInstance, LaunchSpec

#: seconds close() waits for a launch in flight beyond the boot timeout (the provider's undo)
LATE_LAUNCH_MARGIN = 120.0
#: in a kept machine's run dir: the host keys the run verified, for the reconnect line
KNOWN_HOSTS = "known_hosts"


@dataclass
class Instance:
    """A launched machine with its verified connection and testinfra host."""

    machine: Machine
    ready: readiness.Readiness
    run_dir: RunDir
    host: Any  # testinfra.host.Host, None when the login was refused


class Fleet:
    """The machines of one run; :meth:`close` destroys all of them, collecting every failure."""

    def __init__(self, provider: Provider, spec: LaunchSpec, keep: KeepInstance) -> None:
        self.provider = provider
        self.spec = spec
        self.keep = keep
        self.instances: list[Instance] = []
        self._pending: list[tuple[Machine | None, RunDir]] = []
        self._lock = threading.Lock()
        #: run dirs whose provider.launch has not returned yet, with the thread launching into
        #: each: it registers (or, once the fleet is closed, destroys) what it hands back, and
        #: close() waits for it while that thread is alive
        self._launching: list[tuple[RunDir, threading.Thread]] = []
        self._landed = threading.Condition(self._lock)
        self._closed = False
        #: machines launched together with the first for later tests, or why they failed
        self.spares: list[Instance | BaseException] = []
        self.kept: list[str] = []

    def launch(self, progress: readiness.Progress | None = None, **overrides: Any) -> Instance:
        """Launch one machine and wait until it is ready (SSH verified, cloud-init done)."""
        return self.launch_many(1, progress, **overrides)[0]

    def launch_many(self, count: int, progress: readiness.Progress | None = None,
                    **overrides: Any) -> list[Instance]:
        """Launch *count* machines at once and wait for them together, so N boots take about one
        boot's wall time where the platform has the capacity (a cloud always; a local host as
        far as its cores go).  Progress is reported for the first.

        Raises:
            DCTError: the first machine that failed to come up; the others stay in the fleet
            and are destroyed by :meth:`close` like every machine.
        """
        outcomes = self._launch_together(count, progress, overrides)
        failure = next((o for o in outcomes if isinstance(o, BaseException)), None)
        if failure is not None:
            raise failure
        return [o for o in outcomes if isinstance(o, Instance)]

    def launch_with_spares(self, spares: int, progress: readiness.Progress | None = None,
                           **overrides: Any) -> Instance:
        """Launch the machine under test and, alongside it, *spares* more for tests that need
        another instance later (uniqueness): their boots overlap instead of adding up.  A spare
        that fails is reported by :meth:`take_spare`, to the test that needed it."""
        first, *others = self._launch_together(1 + spares, progress, overrides)
        with self._lock:
            self.spares += others
        if isinstance(first, BaseException):
            raise first
        return first

    def take_spare(self) -> Instance | None:
        """A machine launched ahead by :meth:`launch_with_spares`, or None if there is none.

        Raises:
            DCTError: why that spare did not come up.
        """
        with self._lock:
            spare = self.spares.pop(0) if self.spares else None
        if isinstance(spare, BaseException):
            raise spare
        return spare

    def give_back(self, spare: Instance) -> None:
        """A second machine a test is done with, unchanged in what identifies it, for the next
        test that needs one (the throughput check's peer serves the uniqueness suite next)."""
        with self._lock:
            if not self._closed and spare in self.instances:
                self.spares.insert(0, spare)

    def _launch_together(self, count: int, progress: readiness.Progress | None,
                         overrides: dict[str, Any]) -> list[Instance | BaseException]:
        spec = replace(self.spec, **overrides) if overrides else self.spec
        if self.keep is not KeepInstance.NEVER:
            spec = replace(spec, may_outlive_run=True)

        def shown(index: int) -> readiness.Progress | None:
            return progress if index == 0 else None

        if count > 1 and self.provider.concurrent_launches:
            # A cloud's launch blocks until its instance runs: each launch waits in its own thread.
            return self._in_threads(count, lambda i: self._await_ready(*self._start(spec), spec,
                                                                       shown(i)))
        # Machines are started from this thread, one after the other: a QEMU dies with the
        # thread that started it, and starting is the quick part.  Only the waits run in threads.
        started = [self._start(spec) for _ in range(count)]
        if count == 1:
            return [self._await_ready(*started[0], spec, progress)]
        return self._in_threads(count, lambda i: self._await_ready(*started[i], spec, shown(i)))

    @staticmethod
    def _in_threads(count: int, work: Callable[[int], Instance]) -> list[Instance | BaseException]:
        """``work(i)`` for every i, each in a thread; what each returned or raised, in order."""
        outcomes: list[Instance | BaseException] = [RuntimeError("the launch never ended")] * count

        def run(index: int) -> None:
            try:
                outcomes[index] = work(index)
            except BaseException as exc:  # handed to the launching thread
                outcomes[index] = exc

        threads = [threading.Thread(target=run, args=(i,), daemon=True, name=f"launch-{i}")
                   for i in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return outcomes

    def _start(self, spec: LaunchSpec) -> tuple[Machine, RunDir, float]:
        """Have the provider create one machine, registered the moment it exists.

        Raises:
            DCTError: the fleet was closed before or while the provider launched it (the
            machine, if any, is destroyed here, by the thread that launched it).
        """
        run_dir = RunDir(spec.run_id)
        with self._lock:
            closed = self._closed
            if not closed:
                self._launching.append((run_dir, threading.current_thread()))
        if closed:
            run_dir.close()
            raise DCTError("the run was ending: this machine was not launched")
        started = time.monotonic()
        machine: Machine | None = None
        try:
            machine = self.provider.launch(spec, run_dir.path)
        finally:
            with self._lock:
                closed = self._closed
                if not closed:  # a failed launch's run dir goes with the fleet, as ever
                    self._pending.append((machine, run_dir))
                    self._landed_from(run_dir)
            if closed:
                try:
                    self._abandon(machine, run_dir)
                finally:
                    with self._lock:
                        self._landed_from(run_dir)
        if closed:
            raise DCTError("the run ended while this machine was launching: it was destroyed")
        assert machine is not None
        return machine, run_dir, started

    def _landed_from(self, run_dir: RunDir) -> None:
        """The launch into *run_dir* is over (call with the lock held): close() may go on."""
        self._launching[:] = [(d, t) for d, t in self._launching if d is not run_dir]
        self._landed.notify_all()

    @staticmethod
    def _abandon(machine: Machine | None, run_dir: RunDir) -> None:
        """Destroy what a launch handed back after the fleet was closed.  If that fails, the run
        dir is left to its guard (it removes what the provider recorded) and then to gc."""
        errors = _destroy(machine, run_dir)
        if not errors:
            return
        failure = DCTError("a machine launched while the run was ending was not removed")
        note_cleanup_failures(failure, errors)
        print(f"debian-cloud-tests: {failure}", file=sys.stderr)

    def _await_ready(self, machine: Machine, run_dir: RunDir, started: float, spec: LaunchSpec,
                     progress: readiness.Progress | None) -> Instance:
        """Wait for a verified SSH handshake and for cloud-init to finish."""
        ready = readiness.wait_for_ssh(machine, spec.boot_timeout, progress, started)
        machine.boot_seconds = ready.boot_seconds
        machine.ssh_login_error = ready.login_error
        remaining = spec.boot_timeout - (time.monotonic() - started)
        readiness.wait_for_cloud_init(ready, remaining)
        host = None
        if ready.client is not None:
            host = sshhost.make_host(ready.client,
                                     lambda: ssh.connect(machine.ssh, ready.host_keys), machine.ssh)
        instance = Instance(machine, ready, run_dir, host)
        with self._lock:
            registered = (machine, run_dir) in self._pending  # else the fleet was closed meanwhile
            if registered:
                self._pending.remove((machine, run_dir))
                self.instances.append(instance)
        if not registered and ready.client is not None:  # close() destroyed the machine
            ready.client.close()
        return instance

    def pending_machines(self) -> list[Machine]:
        """Machines launched but never ready: their console is what explains the failure."""
        return [m for m, _ in self._pending if m is not None]

    def close(self, failed: bool) -> None:
        """Destroy every machine (or keep them, as asked) and remove their run dirs.

        Raises:
            CleanupError: listing every resource that could not be removed.
        """
        errors: list[BaseException] = []
        keep = self.keep is KeepInstance.ALWAYS or (self.keep is KeepInstance.ON_FAILURE and failed)
        with self._lock:  # a wait still running in a thread must not change the lists under us
            instances, pending = list(self.instances), list(self._pending)
            self.instances.clear()
            self._pending.clear()
            self.spares.clear()
            self._closed = True
        for inst in instances:
            if inst.ready.client is not None:
                inst.ready.client.close()
            if keep:
                access = inst.machine.describe_access(_known_hosts(inst))
                self.kept.append(access)
                inst.run_dir.detach(access)
                continue
            errors += _destroy(inst.machine, inst.run_dir)
        for machine, run_dir in pending:
            errors += _destroy(machine, run_dir)
        self._wait_for_launches()
        if errors:
            raise CleanupError(errors)

    def _wait_for_launches(self) -> None:
        """Wait (after removing everything else) for launches still in flight in other threads
        (Ctrl-C while several launched): each destroys its machine as soon as the provider hands
        it back.  A provider's launch gives up within its boot timeout; another Ctrl-C leaves them
        to their run dirs' guards and to gc.

        A launch whose thread is this one, or is gone, was cut short by an interrupt before it
        could say so: nothing will land from it, and its run dir (which reaps what the provider
        recorded in it) is closed here instead of being waited for."""
        deadline = time.monotonic() + self.spec.boot_timeout + LATE_LAUNCH_MARGIN
        with self._landed:
            while time.monotonic() < deadline and any(self._in_flight(t) for _, t in self._launching):
                self._landed.wait(min(1.0, max(deadline - time.monotonic(), 0.0)))
            cut_short = [d for d, t in self._launching if not self._in_flight(t)]
            self._launching[:] = [(d, t) for d, t in self._launching if self._in_flight(t)]
        for run_dir in cut_short:
            run_dir.hand_to_guard()  # the guard removes what the provider recorded, or keeps it

    @staticmethod
    def _in_flight(thread: threading.Thread) -> bool:
        return thread.is_alive() and thread is not threading.current_thread()


def _destroy(machine: Machine | None, run_dir: RunDir) -> list[BaseException]:
    """Destroy *machine* and close its run dir; if the destroy failed, the run dir and the cloud
    record in it stay for its guard and then gc to retry, instead of being lost with it."""
    try:
        errors = machine.destroy() if machine is not None else []
    except Exception as exc:  # destroy must not raise; one that does failed all the same
        errors = [exc]
    if errors:
        run_dir.hand_to_guard()
    else:
        run_dir.close()
    return errors


def _known_hosts(inst: Instance) -> Path:
    """Write the host keys the run verified for *inst* (the one its handshake presented, else
    every key it would have accepted) into its run dir, in known_hosts form."""
    ep = inst.machine.ssh
    keys = [inst.ready.verified_key] if inst.ready.verified_key else inst.ready.host_keys
    return sshkeys.write_known_hosts(inst.run_dir.path / KNOWN_HOSTS, ep.host, ep.port, keys)

"""The lifetime of the machines of one run: launch, wait until ready, and always destroy.

Every machine is registered the moment the provider returns it, so an interruption at any point
(Ctrl-C during boot included) still destroys it; its run dir is guarded by a separate process
(see :mod:`rundir`) for the cases where this process gets no chance to clean up.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import Any

from . import readiness, ssh
from .errors import CleanupError
from .machine import Machine
from .provider import Provider
from .rundir import RunDir
from .spec import KeepInstance, LaunchSpec


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

    def launch_with_spares(self, spares: int, progress: readiness.Progress | None = None
                           ) -> Instance:
        """Launch the machine under test and, alongside it, *spares* more for tests that need
        another instance later (uniqueness): their boots overlap instead of adding up.  A spare
        that fails is reported by :meth:`take_spare`, to the test that needed it."""
        first, *others = self._launch_together(1 + spares, progress, {})
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

    def _launch_together(self, count: int, progress: readiness.Progress | None,
                         overrides: dict[str, Any]) -> list[Instance | BaseException]:
        # Machines are started from this thread, one after the other: a QEMU dies with the
        # thread that started it, and starting is the quick part.  Only the waits run in threads.
        spec = replace(self.spec, **overrides) if overrides else self.spec
        if self.keep is not KeepInstance.NEVER:
            spec = replace(spec, options={**spec.options, "die_with_parent": "no"})
        started = [self._start(spec) for _ in range(count)]
        if count == 1:
            return [self._await_ready(*started[0], spec, progress)]
        outcomes: list[Instance | BaseException] = [RuntimeError("the wait never ended")] * count

        def wait(index: int) -> None:
            try:
                outcomes[index] = self._await_ready(*started[index], spec,
                                                    progress if index == 0 else None)
            except BaseException as exc:  # handed to the launching thread
                outcomes[index] = exc

        threads = [threading.Thread(target=wait, args=(i,), daemon=True, name=f"ready-{i}")
                   for i in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return outcomes

    def _start(self, spec: LaunchSpec) -> tuple[Machine, RunDir, float]:
        """Have the provider create one machine, registered the moment it exists."""
        run_dir = RunDir(spec.run_id)
        entry: tuple[Machine | None, RunDir] = (None, run_dir)
        with self._lock:
            self._pending.append(entry)
        started = time.monotonic()
        machine = self.provider.launch(spec, run_dir.path)
        with self._lock:
            self._pending.remove(entry)
            self._pending.append((machine, run_dir))
        return machine, run_dir, started

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
            host = ssh.make_host(ready.client, lambda: ssh.connect(machine.ssh, ready.host_keys),
                                 machine.ssh)
        instance = Instance(machine, ready, run_dir, host)
        with self._lock:
            if (machine, run_dir) in self._pending:  # else the fleet was closed meanwhile
                self._pending.remove((machine, run_dir))
                self.instances.append(instance)
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
        for inst in instances:
            if inst.ready.client is not None:
                inst.ready.client.close()
            if keep:
                self.kept.append(inst.machine.describe_access())
                inst.run_dir.detach()
                continue
            errors += inst.machine.destroy()
            inst.run_dir.close()
        for machine, run_dir in pending:
            if machine is not None:
                errors += machine.destroy()
            run_dir.close()
        if errors:
            raise CleanupError(errors)

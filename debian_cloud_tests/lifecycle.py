"""The lifetime of the machines of one run: launch, wait until ready, and always destroy.

Every machine is registered the moment the provider returns it, so an interruption at any point
(Ctrl-C during boot included) still destroys it; its run dir is guarded by a separate process
(see :mod:`rundir`) for the cases where this process gets no chance to clean up.
"""

from __future__ import annotations

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
        self.kept: list[str] = []

    def launch(self, progress: readiness.Progress | None = None, **overrides: Any) -> Instance:
        """Launch one machine and wait until it is ready (SSH verified, cloud-init done)."""
        spec = replace(self.spec, **overrides) if overrides else self.spec
        if self.keep is not KeepInstance.NEVER:
            spec = replace(spec, options={**spec.options, "die_with_parent": "no"})
        run_dir = RunDir(spec.run_id)
        entry: tuple[Machine | None, RunDir] = (None, run_dir)
        self._pending.append(entry)
        started = time.monotonic()
        machine = self.provider.launch(spec, run_dir.path)
        self._pending.remove(entry)
        self._pending.append((machine, run_dir))
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
        for inst in self.instances:
            if inst.ready.client is not None:
                inst.ready.client.close()
            if keep:
                self.kept.append(inst.machine.describe_access())
                inst.run_dir.detach()
                continue
            errors += inst.machine.destroy()
            inst.run_dir.close()
        for machine, run_dir in self._pending:
            if machine is not None:
                errors += machine.destroy()
            run_dir.close()
        self.instances.clear()
        self._pending.clear()
        if errors:
            raise CleanupError(errors)

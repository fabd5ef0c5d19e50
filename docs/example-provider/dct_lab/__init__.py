"""An example provider in a package of its own: machines of a lab that already run, leased for a
run by a file in a shared directory and reached over SSH.  docs/providers.md walks through it.

Everything about the provider is on its class: its options, where its resources live (for `gc`
and `providers`), whether it starts machines; its gc module beside it removes expired leases.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from debian_cloud_tests import expiry
from debian_cloud_tests.errors import UsageError
from debian_cloud_tests.machine import Machine, PlatformFacts, SSHEndpoint
from debian_cloud_tests.options import Option
from debian_cloud_tests.provider import Provider
from debian_cloud_tests.spec import LaunchSpec, ProviderSettings

LEASES = Option("lab-leases", "directory where the lab records which run leases which machine")


@dataclass(frozen=True)
class LabSettings(ProviderSettings):
    """What validate made of the options: launch reads this, never the options again."""

    host: str
    address: str
    port: int
    key_file: Path
    host_key: str
    leases: Path


class LabProvider(Provider):
    name = "lab"
    starts_machines = False  # the lab's machines run already: no console, no second instance
    options = (
        Option("lab-host", "the lab machine to test, USER@ADDRESS:PORT"),
        Option("lab-key", "private key file that logs in to it"),
        Option("lab-host-key", "its SSH host key, \"TYPE BASE64\""),
        LEASES,
    )
    scope_options = (LEASES,)

    def validate(self, spec: LaunchSpec) -> LaunchSpec:
        missing = [f"--{o.name}" for o in self.options if not spec.options.get(o.spec_key)]
        if missing:
            raise UsageError(f"lab: give {', '.join(missing)}")
        user, _, where = spec.options["lab_host"].rpartition("@")
        address, _, port = where.rpartition(":")
        if not (user and address and port.isdigit()):
            raise UsageError(f"--lab-host {spec.options['lab_host']!r}: give USER@ADDRESS:PORT")
        if not Path(spec.options["lab_leases"]).is_dir():
            raise UsageError(f"--lab-leases {spec.options['lab_leases']}: no such directory")
        settings = LabSettings(host=spec.options["lab_host"], address=address, port=int(port),
                               key_file=Path(spec.options["lab_key"]),
                               host_key=spec.options["lab_host_key"],
                               leases=Path(spec.options["lab_leases"]))
        return replace(spec, ssh_user=user, settings=settings)

    def launch(self, spec: LaunchSpec, run_dir: Path) -> Machine:
        lab = spec.settings_as(LabSettings)
        lease = lab.leases / f"{spec.run_id}.lease"
        lease.write_text(f"{lab.host} {expiry.mark()}\n")
        endpoint = SSHEndpoint(lab.address, lab.port, spec.ssh_user, lab.key_file)
        facts = PlatformFacts(provider=self.name, instance_id=lab.host, hostname="", arch=spec.arch,
                              firmware=spec.firmware, datasource="NoCloud")
        return LabMachine(facts, endpoint, [lab.host_key], lease)

    def preflight(self, options: Mapping[str, str] | None = None) -> str:
        leases = (options or {}).get("lab_leases")
        if leases and not os.access(leases, os.W_OK):
            raise UsageError(f"lab: cannot write leases to {leases}")
        return f"leases in {leases}" if leases else "give --lab-leases to check where leases go"


class LabMachine(Machine):
    not_offered = {"console": "lab: the lab's machines have no console the run can read",
                   "reset": "lab: the lab's machines are not the run's to power-cycle"}

    def __init__(self, facts: PlatformFacts, endpoint: SSHEndpoint, host_keys: list[str],
                 lease: Path) -> None:
        self.facts, self._endpoint, self._host_keys, self._lease = facts, endpoint, host_keys, lease

    @property
    def ssh(self) -> SSHEndpoint:
        return self._endpoint

    def console_log(self) -> str:
        return ""

    def host_keys_hint(self) -> list[str] | None:
        return list(self._host_keys)

    def hard_reset(self) -> None:
        raise UsageError(self.not_offered["reset"])

    def is_alive(self) -> bool:
        return self._lease.exists()

    def destroy(self) -> list[BaseException]:
        try:
            self._lease.unlink(missing_ok=True)
        except OSError as exc:
            return [exc]
        return []

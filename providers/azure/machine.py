"""One Azure VM as a :class:`Machine`: the boot diagnostics serial log as the console, restart
through the API, and a destroy that deletes the run's resource group and everything in it."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from debian_cloud_tests import sweep
from debian_cloud_tests.cloudmachine import CloudMachine
from debian_cloud_tests.errors import DCTError, ProviderError
from debian_cloud_tests.machine import Machine, PeerLink, PlatformFacts, SSHEndpoint

from . import errors, peerlink
from .session import Clients

POLL_INTERVAL = 5.0


def delete_group(c: Clients, group: str, timeout: float = 1800.0, attempts: int = 3) -> list[BaseException]:
    """Delete a resource group as a whole (gone already is fine), retrying a failed delete."""
    return sweep.delete(
        lambda: errors.operation(c.resource.resource_groups.begin_delete, "resource_groups.delete",
                                 group, timeout=timeout),
        gone=lambda exc: "ResourceGroupNotFound" in exc.message or "ResourceNotFound" in exc.message,
        sleep=errors.sleep, attempts=attempts)


class AzureMachine(CloudMachine):
    console_call = "retrieveBootDiagnosticsData"

    def __init__(self, c: Clients, group: str, vm: str, facts: PlatformFacts, endpoint: SSHEndpoint,
                 injected: list[str] | None, props: dict[str, str],
                 network: peerlink.Network | None = None) -> None:
        """*network*: the VM's virtual network and private address (the NSG and the network
        have the VM's name, in its group)."""
        super().__init__(facts, endpoint, injected, props)
        self.clients, self.group, self.vm = c, group, vm
        self.network = network or peerlink.Network("", peerlink.DEFAULT_SPACE, "")

    def _poll_interval(self) -> float:
        return POLL_INTERVAL

    def _read_console(self, known: str) -> str:
        """The serial log blob of boot diagnostics (absent for the first minutes of a boot)."""
        data = self.clients.compute.virtual_machines.retrieve_boot_diagnostics_data(
            self.group, self.vm, sas_uri_expiration_time_in_minutes=10)
        uri = data.serial_console_log_blob_uri
        if not uri:
            return known
        try:
            with urllib.request.urlopen(uri, timeout=30) as resp:
                return resp.read().decode("utf-8", "replace") or known
        except (urllib.error.URLError, OSError, ValueError) as exc:
            self._reason = f"serial log: {exc}"
            return known

    def hard_reset(self) -> None:
        try:
            errors.operation(self.clients.compute.virtual_machines.begin_restart,
                             "virtual_machines.restart", self.group, self.vm, timeout=600)
        except DCTError as exc:
            raise ProviderError(f"azure: restart of {self.vm} failed: {exc.message}") from None

    def is_alive(self) -> bool:
        return not self._destroyed

    def _remove(self) -> list[BaseException]:
        return delete_group(self.clients, self.group)

    def link_to(self, other: Machine, port: int) -> PeerLink:
        """Peer the two VMs' networks and open *port* between their private addresses
        (:mod:`.peerlink`)."""
        if not isinstance(other, AzureMachine):
            raise NotImplementedError("the other machine is not an Azure VM")
        return peerlink.AzurePeerLink(self, other, port)

    def describe_access(self, known_hosts: Path | None = None) -> str:
        return (f"{super().describe_access(known_hosts)}\n  console: az vm boot-diagnostics get-boot-log -g "
                f"{self.group} -n {self.vm}\n  remove it: az group delete -y -n {self.group}")

"""One GCE instance as a :class:`Machine`: serial port 1 as the console, reset through the API,
a peer link to another instance of the run (:mod:`.peerlink`), and a destroy that removes a link's
rule left open, the instance (its boot disk auto-deletes), then its firewall rule.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from debian_cloud_tests.cloudmachine import CloudMachine
from debian_cloud_tests.errors import DCTError, ProviderError
from debian_cloud_tests.machine import Machine, PeerLink, PlatformFacts, SSHEndpoint

from . import peerlink, resources, retry
from .session import Clients

POLL_INTERVAL = 2.0
GONE = frozenset({"STOPPING", "STOPPED", "TERMINATED", "SUSPENDED"})


@dataclass
class Created:
    """What one launch created, so that destroy (or a failed launch) removes exactly that."""

    zone: str
    instance: str | None = None
    firewall: str | None = None
    run_id: str = ""  # the run's id, for the marks of a rule made later
    #: the rules of peer links this instance made and that are not deleted yet
    links: list[str] = field(default_factory=list)

    def remove(self, c: Clients) -> list[BaseException]:
        """A peer link's rule, the instance, then its own rule; never raises."""
        errors: list[BaseException] = []
        for name in list(self.links):
            failed = resources.delete_firewall(c, name)
            errors += failed
            if not failed:
                self.links.remove(name)
        if self.instance:
            failed = resources.delete_instance(c, self.zone, self.instance)
            errors += failed
            self.instance = None if not failed else self.instance
        if self.firewall:
            failed = resources.delete_firewall(c, self.firewall)
            errors += failed
            self.firewall = None if not failed else self.firewall
        return errors


class GceMachine(CloudMachine):
    """A running instance reached on its external address, port 22."""

    console_call = "getSerialPortOutput"

    def __init__(self, clients: Clients, created: Created, facts: PlatformFacts,
                 endpoint: SSHEndpoint, injected: list[str] | None, props: dict[str, str],
                 network: tuple[str, str] = ("", "")) -> None:
        """*network*: the instance's VPC network (its link) and internal address."""
        super().__init__(facts, endpoint, injected, props)
        self.clients = clients
        self.created = created
        self.name = str(created.instance)
        self.network, self.internal_address = network
        self._next = 0
        self._status = "RUNNING"
        self._status_at = time.monotonic()

    def _poll_interval(self) -> float:
        return POLL_INTERVAL

    def _read_console(self, known: str) -> str:
        """Serial port 1, read incrementally from where the last read stopped."""
        from google.cloud import compute_v1

        c = self.clients
        out = c.instances.get_serial_port_output(request=compute_v1.GetSerialPortOutputInstanceRequest(
            project=c.project, zone=self.created.zone, instance=self.name, port=1, start=self._next))
        self._next = int(out.next_ or self._next)
        return known + (out.contents or "")

    def hard_reset(self) -> None:
        c = self.clients
        try:
            op = retry.call(c.instances.reset_unary, "instances.reset", project=c.project,
                            zone=self.created.zone, instance=self.name)
            retry.wait_operation(lambda: c.zone_operations.get(
                project=c.project, zone=self.created.zone, operation=op.name), "instances.reset")
        except DCTError as exc:
            raise ProviderError(f"gce: reset of {self.name} failed: {exc.message}") from None

    def is_alive(self) -> bool:
        if self._destroyed:
            return False
        if time.monotonic() - self._status_at >= POLL_INTERVAL:
            self._status_at = time.monotonic()
            try:
                inst = resources.get_instance(self.clients, self.created.zone, self.name)
                self._status = str(inst.status)
                self._reason = f"instance {self._status}: {inst.status_message or ''}".strip(": ")
            except DCTError as exc:
                self._reason = exc.message
        return self._status not in GONE

    def _remove(self) -> list[BaseException]:
        return self.created.remove(self.clients)

    def link_to(self, other: Machine, port: int) -> PeerLink:
        """Open *port* between the two instances' internal addresses (:mod:`.peerlink`)."""
        if not isinstance(other, GceMachine):
            raise NotImplementedError("the other machine is not a GCE instance")
        return peerlink.GcePeerLink(self, other, port)

    def describe_access(self, known_hosts: Path | None = None) -> str:
        c, z = self.clients, self.created.zone
        cleanup = f"gcloud compute instances delete {self.name} --zone {z} --project {c.project}"
        for rule in self.created.links:
            cleanup += f"; gcloud compute firewall-rules delete {rule} --project {c.project}"
        if self.created.firewall:
            cleanup += f"; gcloud compute firewall-rules delete {self.created.firewall} --project {c.project}"
        return (f"{super().describe_access(known_hosts)}\n  console: gcloud compute instances "
                f"get-serial-port-output {self.name} --zone {z}\n  remove it: {cleanup}")

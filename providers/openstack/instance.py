"""One Nova server as a :class:`Machine`: its console log as the console, reboots through the
API, a link to another server of the run (:mod:`.peerlink`), and a destroy that removes the rules
such a link left, the server, then its security group, then its key pair.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from debian_cloud_tests.cloudmachine import CloudMachine
from debian_cloud_tests.errors import DCTError, ProviderError
from debian_cloud_tests.machine import Machine, PeerLink, PlatformFacts, SSHEndpoint
from debian_cloud_tests.rulelink import remove_recorded

from . import peerlink, resources, retry

POLL_INTERVAL = 2.0
GONE = frozenset({"SHUTOFF", "ERROR", "DELETED", "SOFT_DELETED", "SHELVED", "SHELVED_OFFLOADED"})


@dataclass
class Created:
    """What one launch created, so that destroy (or a failed launch) removes exactly that.

    Each name is recorded before its create call: a reply lost on the way is still cleaned up.
    """

    keypair: str | None = None
    group_name: str | None = None
    group_ids: list[str] = field(default_factory=list)
    server_name: str | None = None
    server_ids: list[str] = field(default_factory=list)
    #: rules a peer link added to the server's group and has not deleted yet
    rules: list[peerlink.Rule] = field(default_factory=list)

    def remove(self, conn: Any) -> list[BaseException]:
        """A peer link's rules (the group may be the user's), then server, security group and key
        pair (the reverse of creation); never raises."""
        errors = remove_recorded(self.rules, lambda rule: peerlink.delete(conn, rule))
        # by name too: a create whose answer was lost (and was then retried) left one unrecorded
        if self.server_name:
            self.server_ids = _merged(self.server_ids, resources.servers_named, conn,
                                      self.server_name, errors)
        self.server_ids = _deleted_each(self.server_ids, resources.delete_server, conn, errors)
        if not self.server_ids and not errors:
            self.server_name = None
        if not self.server_ids:  # Neutron refuses while a server holds the group
            if self.group_name:
                self.group_ids = _merged(self.group_ids, resources.security_groups_named, conn,
                                         self.group_name, errors)
            self.group_ids = _deleted_each(self.group_ids, resources.delete_security_group, conn,
                                           errors)
            if not self.group_ids and not errors:
                self.group_name = None
        if self.keypair:
            failed = resources.delete_keypair(conn, self.keypair)
            errors += failed
            self.keypair = None if not failed else self.keypair
        return errors


def _merged(known: list[str], named: Callable[[Any, str], list[str]], conn: Any, name: str,
            errors: list[BaseException]) -> list[str]:
    """*known* ids and those the cloud lists under *name* (a failed listing joins *errors*)."""
    try:
        return list(dict.fromkeys([*known, *named(conn, name)]))
    except DCTError as exc:
        errors.append(exc)
        return known


def _deleted_each(ids: list[str], delete: Callable[[Any, str], list[BaseException]], conn: Any,
                  errors: list[BaseException]) -> list[str]:
    """Delete each of *ids*; returns those that remain (their failures join *errors*)."""
    left = []
    for rid in ids:
        failed = delete(conn, rid)
        errors += failed
        if failed:
            left.append(rid)
    return left


class OpenStackMachine(CloudMachine):
    """A running server reached on its address, port 22."""

    console_call = "os-getConsoleOutput"

    def __init__(self, conn: Any, created: Created, facts: PlatformFacts, endpoint: SSHEndpoint,
                 injected: list[str] | None, props: dict[str, str],
                 network: tuple[str, str, str] = ("", "", "")) -> None:
        """*network*: the server's network id, security group id and fixed address on it."""
        super().__init__(facts, endpoint, injected, props)
        self.conn = conn
        self.created = created
        self.network_id, self.group_id, self.fixed_address = network
        self.server_id = facts.instance_id
        self.name = facts.hostname
        self._status = "ACTIVE"
        self._status_at = time.monotonic()

    def _poll_interval(self) -> float:
        return POLL_INTERVAL

    def _read_console(self, known: str) -> str:
        """Nova's console log (the whole of it: Nova has no offsets)."""
        with retry.sdk_quiet():  # read as it is: a console poll is not retried
            out = self.conn.compute.get_server_console_output(self.server_id)
        text = str((out or {}).get("output") or "")
        if len(text) >= len(known) or not known.endswith(text):
            return text  # Nova may keep only the tail: never go back to less
        return known

    def _reboot(self, kind: str) -> None:
        try:
            retry.call(self.conn.compute.reboot_server, f"{kind.lower()} reboot", self.server_id, kind)
        except DCTError as exc:
            raise ProviderError(f"openstack: {kind.lower()} reboot of {self.name} failed: "
                                f"{exc.message}") from None

    def hard_reset(self) -> None:
        """Nova's HARD reboot: the hypervisor power-cycles the guest."""
        self._reboot("HARD")

    def soft_reboot(self) -> None:
        """Nova's SOFT reboot: ACPI shutdown asked of the guest, then start."""
        self._reboot("SOFT")

    def is_alive(self) -> bool:
        if self._destroyed:
            return False
        if time.monotonic() - self._status_at >= POLL_INTERVAL:
            self._status_at = time.monotonic()
            try:
                server = retry.call(self.conn.compute.get_server, "get server", self.server_id)
                self._status = str(server.status)
                fault = (server.fault or {}).get("message", "") if server.fault else ""
                self._reason = f"server {self._status}: {fault}".strip(": ")
            except DCTError as exc:
                self._reason = exc.message
                if getattr(exc, "status", 0) == 404:
                    self._status = "DELETED"
        return self._status not in GONE

    def _remove(self) -> list[BaseException]:
        return self.created.remove(self.conn)

    def link_to(self, other: Machine, port: int) -> PeerLink:
        """Open *port* between the two servers' fixed addresses (:mod:`.peerlink`).

        Raises:
            NotImplementedError: *other* is not a Nova server.
            ProviderError: the two are on different networks, or a rule could not be added.
        """
        if not isinstance(other, OpenStackMachine):
            raise NotImplementedError("the other machine is not a Nova server")
        return peerlink.OpenStackPeerLink(self, other, port)

    def describe_access(self, known_hosts: Path | None = None) -> str:
        cloud = self._props.get("openstack_cloud")
        os_cloud = f"--os-cloud {cloud} " if cloud else ""
        cleanup = "".join(f"openstack {os_cloud}security group rule delete {rule.rule_id}; "
                          for rule in self.created.rules)
        cleanup += f"openstack {os_cloud}server delete --wait {self.server_id}"
        for group in self.created.group_ids:
            cleanup += f"; openstack {os_cloud}security group delete {group}"
        if self.created.keypair:
            cleanup += f"; openstack {os_cloud}keypair delete {self.created.keypair}"
        return (f"{super().describe_access(known_hosts)}\n  console: openstack {os_cloud}console log show "
                f"{self.server_id}\n  remove it: {cleanup}")

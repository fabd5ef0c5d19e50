"""Two servers of a run let reach each other on one TCP port: each server's security group admits
that port from the other's fixed address on the network both joined (a /32 or /128 rule, never a
remote group: two groups naming each other could not be deleted while either is).  The rules are
deleted when the link is closed, and by the machine's destroy if the run ends first (a group the
user gave is theirs to keep as it was).

Neutron answers 409 for a rule that is already there: that one is not ours to delete, unless it
carries our description (a create whose answer was lost, then retried).  The description names
the server the rule admits, so :mod:`.gc` finds the rules a killed run left on a user's group.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from debian_cloud_tests.errors import DCTError, ProviderError
from debian_cloud_tests.machine import LinkEnd
from debian_cloud_tests.rulelink import RuleLink

from . import retry
from .errors import OpenStackError, QuotaError, is_gone

if TYPE_CHECKING:
    from .instance import OpenStackMachine

_DESCRIPTION = re.compile(r"^debian-cloud-tests: from (?P<server>[0-9a-fA-F-]+) for a check$")


def description(server_id: str) -> str:
    """What a rule admitting *server_id* says of itself."""
    return f"debian-cloud-tests: from {server_id} for a check"


def source_of(description: object) -> str | None:
    """The server a rule of a link admits (None: not a rule of a link)."""
    m = _DESCRIPTION.match(description) if isinstance(description, str) else None
    return m["server"] if m else None


def links_rules(conn: Any) -> list[tuple[Rule, str]]:
    """Every rule a link made in the project's groups, with the server it admits."""
    found = retry.call(lambda: list(conn.network.security_group_rules()), "list security group rules")
    rules = []
    for r in found:
        server = source_of(r.description)
        if server is not None and r.remote_ip_prefix:
            source = str(ipaddress.ip_network(str(r.remote_ip_prefix), strict=False).network_address)
            rules.append((Rule(str(r.security_group_id), int(r.port_range_min or 0), source,
                               str(r.description), str(r.id)), server))
    return rules


@dataclass(frozen=True)
class Rule:
    """One ingress rule a link added: TCP *port* from *source* (an address) into *group*."""

    group: str
    port: int
    source: str
    description: str
    rule_id: str = ""

    @property
    def prefix(self) -> str:
        address = ipaddress.ip_address(self.source)
        return f"{address}/{address.max_prefixlen}"

    def attributes(self) -> dict[str, Any]:
        return {"security_group_id": self.group, "direction": "ingress", "protocol": "tcp",
                "port_range_min": self.port, "port_range_max": self.port,
                "remote_ip_prefix": self.prefix,
                "ethertype": f"IPv{ipaddress.ip_address(self.source).version}"}


def _ours_already(conn: Any, rule: Rule) -> str | None:
    """The id of the rule matching *rule* with its description: one we created, whose answer
    was lost (None: the rule there is someone else's)."""
    attrs = rule.attributes()
    found = retry.call(lambda: list(conn.network.security_group_rules(
        security_group_id=rule.group, direction="ingress", protocol="tcp")), "list security group rules")
    for r in found:
        if (r.port_range_min, r.port_range_max, r.remote_ip_prefix, r.description) == \
                (attrs["port_range_min"], attrs["port_range_max"], attrs["remote_ip_prefix"],
                 rule.description):
            return str(r.id)
    return None


def add(conn: Any, rule: Rule) -> Rule | None:
    """Create *rule*; returns it with its id, or None when the group held it already (it is not
    ours to delete then)."""
    try:
        created = retry.call(conn.network.create_security_group_rule, "create security group rule",
                             description=rule.description, **rule.attributes())
        return Rule(rule.group, rule.port, rule.source, rule.description, str(created.id))
    except DCTError as exc:
        # Neutron's quota answer is a 409 too (OverQuota): only another 409 is a rule there
        if isinstance(exc, OpenStackError) and exc.status == 409 and not isinstance(exc, QuotaError):
            ours = _ours_already(conn, rule)
            return Rule(rule.group, rule.port, rule.source, rule.description, ours) if ours else None
        raise ProviderError(f"openstack: could not open TCP port {rule.port} of security group "
                            f"{rule.group} to {rule.prefix}: {exc.message}") from None


def delete(conn: Any, rule: Rule) -> list[BaseException]:
    """Delete *rule*; one already gone (or its group) is not a failure.  Never raises."""
    try:
        retry.call(conn.network.delete_security_group_rule, f"delete security group rule "
                   f"{rule.rule_id}", rule.rule_id, ignore_missing=False)
    except DCTError as exc:
        if not is_gone(exc):
            return [ProviderError(f"openstack: the rule {rule.rule_id} opening TCP port {rule.port} "
                                  f"of security group {rule.group} to {rule.prefix} was not "
                                  f"removed: {exc.message}")]
    except Exception as exc:  # a destroy goes on whatever one call did
        return [exc]
    return []


class OpenStackPeerLink(RuleLink[Rule]):
    """Each server's group opened to the other's fixed address on *port*."""

    def __init__(self, a: OpenStackMachine, b: OpenStackMachine, port: int) -> None:
        if a.network_id != b.network_id:
            raise ProviderError(f"openstack: {a.name} is on network {a.network_id}, {b.name} on "
                                f"{b.network_id}: their fixed addresses do not reach each other")
        for m in (a, b):
            if not m.fixed_address or not m.group_id:
                raise ProviderError(f"openstack: {m.name} has no fixed address or security group "
                                    f"on network {m.network_id} to open to its peer")
        super().__init__((LinkEnd(a.fixed_address), LinkEnd(b.fixed_address)),
                         lambda machine, rule: delete(machine.conn, rule))

        def opening(machine: OpenStackMachine, source: OpenStackMachine) -> Callable[[], Rule | None]:
            rule = Rule(machine.group_id, port, source.fixed_address, description(source.server_id))
            return lambda: add(machine.conn, rule)

        self.open([(a, opening(a, b)), (b, opening(b, a))])

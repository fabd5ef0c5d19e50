"""Two GCE instances of a run let reach each other on one TCP port: one firewall rule of their
VPC network admits that port from the two instances' internal addresses (each a /32) to the two
instances (their network tags: each is tagged with its own name at launch, as its SSH rule
targets it).  The rule's description carries the run's marks as the launch's rules do, so gc
sweeps it after a crash; it is deleted when the link is closed, and by the first instance's
destroy if the run ends first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from debian_cloud_tests.errors import ProviderError
from debian_cloud_tests.machine import LinkEnd, PeerLink

from . import resources

if TYPE_CHECKING:
    from .instance import GceMachine


def network_of(link: str) -> str:
    """A network's link without the API's address (``projects/P/global/networks/N``, or the
    partial ``global/networks/N`` as given): the same network, however GCE spelled it."""
    return link.split("/compute/v1/", 1)[-1]


def rule_name(a: GceMachine, b: GceMachine, port: int) -> str:
    """``dct-<a's id>-<b's id>-<port>``: instance names are ``dct-`` and 12 hex digits, made per
    launch, so one name per link of the run (39 characters; GCE allows 63)."""
    return f"{a.name}-{b.name.removeprefix('dct-')}-{port}"


class GcePeerLink(PeerLink):
    """*port* open between the two instances' internal addresses on their network."""

    def __init__(self, a: GceMachine, b: GceMachine, port: int) -> None:
        if network_of(a.network) != network_of(b.network):
            raise ProviderError(f"gce: {a.name} is on {network_of(a.network)}, {b.name} on "
                                f"{network_of(b.network)}: their internal addresses do not reach "
                                "each other")
        missing = [m.name for m in (a, b) if not m.internal_address]
        if missing:
            raise ProviderError(f"gce: {' and '.join(missing)} has no internal address")
        super().__init__((LinkEnd(a.internal_address), LinkEnd(b.internal_address)))
        self._owner: GceMachine | None = a
        self.rule = rule_name(a, b, port)
        # recorded first: an insert interrupted in flight may have made the rule all the same
        a.created.links.append(self.rule)
        try:
            resources.create_link_firewall(
                a.clients, self.rule, a.network, [a.internal_address, b.internal_address],
                [a.name, b.name], port, resources.labels(a.created.run_id))
        except BaseException:
            self.close()
            raise

    def close(self) -> list[BaseException]:
        owner, self._owner = self._owner, None
        if owner is None:
            return []
        try:
            errors = resources.delete_firewall(owner.clients, self.rule)
        except Exception as exc:  # close never raises
            errors = [exc]
        if errors:
            self._owner = owner  # the owner's destroy deletes it still; close may be tried again
        elif self.rule in owner.created.links:
            owner.created.links.remove(self.rule)
        return errors

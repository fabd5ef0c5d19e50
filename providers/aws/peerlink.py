"""Two EC2 instances of a run let reach each other on one TCP port: each instance's security
group admits that port from the other's private address (a /32, never a group reference: two
groups naming each other could not be deleted while either is).  The rules are revoked when the
link is closed, and by the machine's destroy if the run ends first (a group the user gave is
theirs to keep as it was)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from debian_cloud_tests.errors import ProviderError
from debian_cloud_tests.machine import LinkEnd
from debian_cloud_tests.rulelink import RuleLink

from . import retry
from .errors import AwsError

if TYPE_CHECKING:
    from .instance import AwsMachine

#: what EC2 answers for a rule already there, and for one already gone
DUPLICATE = "InvalidPermission.Duplicate"
GONE = ("InvalidPermission.NotFound", "InvalidGroup.NotFound")


@dataclass(frozen=True)
class Rule:
    """One ingress rule a link added: TCP *port* from *source* (an address) into *group*."""

    group: str
    port: int
    source: str
    description: str

    def permission(self) -> dict[str, Any]:
        return {"IpProtocol": "tcp", "FromPort": self.port, "ToPort": self.port,
                "IpRanges": [{"CidrIp": f"{self.source}/32", "Description": self.description}]}


def authorize(ec2: Any, rule: Rule) -> bool:
    """Add *rule*; False when the group held it already (it is not ours to revoke then)."""
    try:
        retry.call(ec2.authorize_security_group_ingress, "authorize_security_group_ingress",
                   GroupId=rule.group, IpPermissions=[rule.permission()])
    except AwsError as exc:
        if exc.code == DUPLICATE:
            return False
        raise ProviderError(f"aws: could not open TCP port {rule.port} of security group "
                            f"{rule.group} to {rule.source}: {exc.message}") from None
    return True


def revoke(ec2: Any, rule: Rule) -> list[BaseException]:
    """Remove *rule*; one already gone (or its group) is not a failure.  Never raises."""
    try:
        retry.call(ec2.revoke_security_group_ingress, "revoke_security_group_ingress",
                   GroupId=rule.group, IpPermissions=[rule.permission()])
    except AwsError as exc:
        if exc.code not in GONE:
            return [ProviderError(f"aws: the rule opening TCP port {rule.port} of security group "
                                  f"{rule.group} to {rule.source} was not removed: {exc.message}")]
    except Exception as exc:  # a destroy goes on whatever one call did
        return [exc]
    return []


class AwsPeerLink(RuleLink[Rule]):
    """Each instance's group opened to the other's private address on *port*."""

    def __init__(self, a: AwsMachine, b: AwsMachine, port: int) -> None:
        if a.vpc_id != b.vpc_id:
            raise ProviderError(f"aws: {a.instance_id} is in {a.vpc_id}, {b.instance_id} in "
                                f"{b.vpc_id}: their private addresses do not reach each other")
        super().__init__((LinkEnd(a.private_address), LinkEnd(b.private_address)),
                         lambda machine, rule: revoke(machine.ec2, rule))

        def opening(machine: AwsMachine, source: AwsMachine) -> Callable[[], Rule | None]:
            rule = Rule(machine.group_id, port, source.private_address,
                        f"debian-cloud-tests: from {source.instance_id} for a check")
            return lambda: rule if authorize(machine.ec2, rule) else None

        self.open([(a, opening(a, b)), (b, opening(b, a))])

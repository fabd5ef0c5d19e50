"""One EC2 instance as a :class:`Machine`: console and reboot through the API, and a destroy
that removes the instance, then its security group and key pair, collecting every failure.

EC2's console is a window (the last 64 KiB) refreshed by AWS now and then, and reading it is
rate limited: the machine reads it at most every few seconds and stitches the windows together.
It asks for the latest output (``Latest=True``): without it a Nitro instance answers with a
snapshot taken around its start, which never shows the host keys printed later.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from debian_cloud_tests.cloudmachine import CloudMachine
from debian_cloud_tests.errors import DCTError, ProviderError
from debian_cloud_tests.machine import Machine, PeerLink, PlatformFacts, SSHEndpoint
from debian_cloud_tests.rulelink import remove_recorded

from . import peerlink, resources, retry
from .errors import AwsError

#: seconds between two reads of the console or the instance state
POLL_INTERVAL = 3.0
_OVERLAP = 256
GONE = frozenset({"shutting-down", "terminated", "stopping", "stopped"})
#: what EC2 (or an EC2-compatible API) answers when it cannot give the latest output
NO_LATEST = frozenset({"UnsupportedOperation", "InvalidParameterValue", "InvalidParameterCombination",
                       "InvalidParameter", "UnknownParameter"})


@dataclass
class Created:
    """What one launch created, so that destroy (or a failed launch) removes exactly that."""

    region: str
    run_id: str
    instance_id: str | None = None
    group_id: str | None = None  # None when the user gave --security-group: theirs, not ours
    key_id: str | None = None
    key_name: str | None = None
    launching: str | None = None  # the name given to run_instances, whose reply may never come
    group_name: str | None = None  # the name given to create_security_group, likewise
    #: rules a peer link added to the instance's group and has not revoked yet
    rules: list[peerlink.Rule] = field(default_factory=list)

    def remove(self, ec2: Any) -> list[BaseException]:
        """A peer link's rules (the group may be the user's), the instance (it holds the
        group), then group and key; never raises."""
        errors: list[BaseException] = []
        for step in (self._rules, self._instance, self._group, self._key):
            try:
                errors += step(ec2)
            except Exception as exc:  # one step failing must not stop the others
                errors.append(exc)
        return errors

    def _rules(self, ec2: Any) -> list[BaseException]:
        return remove_recorded(self.rules, lambda rule: peerlink.revoke(ec2, rule))

    def _instance(self, ec2: Any) -> list[BaseException]:
        ids = [self.instance_id] if self.instance_id else []
        if not ids and self.launching:  # interrupted in flight: EC2 may have started it anyway
            ids = resources.launched_by(ec2, self.launching)
        errors = resources.terminate(ec2, ids)
        if not errors:
            self.instance_id = self.launching = None
        return errors

    def _group(self, ec2: Any) -> list[BaseException]:
        ids = [self.group_id] if self.group_id else []
        if not ids and self.group_name:  # interrupted in flight: EC2 may have created it anyway
            ids = resources.groups_named(ec2, self.group_name)
        errors = [e for group_id in ids for e in resources.delete_group(ec2, group_id)]
        if not errors:
            self.group_id = self.group_name = None
        return errors

    def _key(self, ec2: Any) -> list[BaseException]:
        if not self.key_name:
            return []
        errors = resources.delete_key(ec2, self.key_name)
        if not errors:
            self.key_name = self.key_id = None
        return errors


def merge_console(old: str, new: str) -> str:
    """Join two console windows: *new* usually repeats the end of *old* and goes on from there."""
    if not new:
        return old
    if not old or new.startswith(old):
        return new
    head = new[:_OVERLAP]
    at = old.find(head)
    while at >= 0:  # the earliest match is the longest overlap
        if new.startswith(old[at:]):
            return old[:at] + new
        at = old.find(head, at + 1)
    if head in old:  # the window moved but the text is the same stretch: keep the longer
        return old if len(old) >= len(new) else new
    return old + ("" if old.endswith("\n") else "\n") + new


class AwsMachine(CloudMachine):
    """A running EC2 instance reached on its public address, port 22."""

    console_call = "get_console_output"

    def __init__(self, ec2: Any, created: Created, facts: PlatformFacts, endpoint: SSHEndpoint,
                 injected_host_keys: list[str] | None, properties: dict[str, str],
                 network: tuple[str, str, str] = ("", "", "")) -> None:
        """*network*: the instance's VPC, security group and private address."""
        super().__init__(facts, endpoint, injected_host_keys, properties)
        self.ec2 = ec2
        self.created = created
        self.vpc_id, self.group_id, self.private_address = network
        self._state = "running"
        self._state_at = time.monotonic()
        self._latest = True  # until EC2 says this instance cannot give the latest output

    @property
    def instance_id(self) -> str:
        return self.facts.instance_id

    def _poll_interval(self) -> float:
        return POLL_INTERVAL

    def _read_console(self, known: str) -> str:
        """EC2 keeps a window of the console: merge the latest one into what is known."""
        from botocore.exceptions import ClientError

        if self._latest:
            try:
                out = self.ec2.get_console_output(InstanceId=self.instance_id, Latest=True)
                return merge_console(known, out.get("Output") or "")
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in NO_LATEST:
                    raise
            out = self.ec2.get_console_output(InstanceId=self.instance_id)
            self._latest = False  # e.g. a Xen instance type: its window is all there is
        else:
            out = self.ec2.get_console_output(InstanceId=self.instance_id)
        return merge_console(known, out.get("Output") or "")

    def hard_reset(self) -> None:
        try:
            retry.call(self.ec2.reboot_instances, "reboot_instances", InstanceIds=[self.instance_id])
        except AwsError as exc:
            raise ProviderError(f"aws: reboot of {self.instance_id} failed: {exc.message}") from None

    def is_alive(self) -> bool:
        if self._destroyed:
            return False
        if time.monotonic() - self._state_at >= POLL_INTERVAL:
            self._state_at = time.monotonic()
            try:
                desc = resources.instance_state(self.ec2, self.instance_id)
            except DCTError as exc:
                self._reason = exc.message
                return True
            if desc is not None:
                self._state = desc["State"]["Name"]
                reason = desc.get("StateReason", {}).get("Message", "")
                self._reason = f"instance {self._state}: {reason}" if reason else self._reason
        return self._state not in GONE

    def _remove(self) -> list[BaseException]:
        return self.created.remove(self.ec2)

    def link_to(self, other: Machine, port: int) -> PeerLink:
        """Open *port* between the two instances' private addresses (:mod:`.peerlink`)."""
        if not isinstance(other, AwsMachine):
            raise NotImplementedError("the other machine is not an EC2 instance")
        return peerlink.AwsPeerLink(self, other, port)

    def describe_access(self, known_hosts: Path | None = None) -> str:
        c = self.created
        cleanup = f"aws ec2 terminate-instances --region {c.region} --instance-ids {self.instance_id}"
        if c.group_id:
            cleanup += f"; then aws ec2 delete-security-group --region {c.region} --group-id {c.group_id}"
        if c.key_name:
            cleanup += f"; aws ec2 delete-key-pair --region {c.region} --key-name {c.key_name}"
        return f"{super().describe_access(known_hosts)}\n  console: aws ec2 get-console-output --region " \
               f"{c.region} --instance-id {self.instance_id}\n  remove it: {cleanup}"


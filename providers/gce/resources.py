"""What a run creates on GCE: a firewall rule and an instance, both marked with the run.

Instances (and their boot disks) carry the labels ``dct-run-id`` and ``dct-expires`` from their
create call; firewall rules have no labels in GCE, so theirs are in the description, which
:mod:`gc` reads.  SSH is opened to this runner's own address only, and only to the instance's
network tag; a peer link's rule (:mod:`.peerlink`) opens one port between two instances' internal
addresses, and only to their tags.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from debian_cloud_tests import expiry, sweep
from debian_cloud_tests.errors import DCTError

from . import retry
from .session import Clients

RUN_ID_LABEL = "dct-run-id"
EXPIRES_LABEL = "dct-expires"
#: an image `publish` uploaded says which bytes in its description (a label holds 63 characters)
SHA256_MARK = "dct-uploaded-sha256"
_DESC = re.compile(r"dct-run-id=(?P<run>\S+) dct-expires=(?P<expires>\S+)")
_SHA256 = re.compile(rf"(?:^|\s){SHA256_MARK}=(?P<sha256>[0-9a-f]{{64}})(?:\s|$)")


def labels(run_id: str, now: datetime | None = None) -> dict[str, str]:
    value = re.sub(r"[^a-z0-9_-]", "-", run_id.lower())[:63]
    return {RUN_ID_LABEL: value, EXPIRES_LABEL: expiry.mark(now, compact=True)}  # [a-z0-9_-] only


def description_marks(description: str) -> dict[str, str]:
    """The run id and expiry written into a firewall rule's description ({} if not ours)."""
    m = _DESC.search(description or "")
    return {RUN_ID_LABEL: m["run"], EXPIRES_LABEL: m["expires"]} if m else {}


def uploaded_sha256(description: str) -> str:
    """The sha256 of the bytes `publish` uploaded for an image, from its description ("" if none)."""
    m = _SHA256.search(description or "")
    return m["sha256"] if m else ""


def create_firewall(c: Clients, name: str, network: str, cidr: str, marks: dict[str, str]) -> None:
    """Allow tcp:22 from *cidr* to instances tagged *name*, and nothing else."""
    _insert_firewall(c, name, network, [cidr], [name], "22",
                     "SSH from the test runner only", marks)


def create_link_firewall(c: Clients, name: str, network: str, sources: list[str],
                         targets: list[str], port: int, marks: dict[str, str]) -> None:
    """Allow tcp:*port* from *sources* (addresses, each as a /32) to instances tagged *targets*,
    and nothing else; a rule of that name already there is this one (a reply lost, retried)."""
    try:
        _insert_firewall(c, name, network, [f"{s}/32" for s in sources], targets, str(port),
                         "iperf3 between two instances of a run", marks)
    except DCTError as exc:
        if getattr(exc, "reason", "") != "alreadyExists":
            raise


def _insert_firewall(c: Clients, name: str, network: str, sources: list[str], targets: list[str],
                     ports: str, why: str, marks: dict[str, str]) -> None:
    from google.cloud import compute_v1

    rule = compute_v1.Firewall(
        name=name, network=network, direction="INGRESS", source_ranges=sources,
        target_tags=targets, allowed=[compute_v1.Allowed(I_p_protocol="tcp", ports=[ports])],
        description=f"debian-cloud-tests: {why}; "
                    f"{RUN_ID_LABEL}={marks[RUN_ID_LABEL]} {EXPIRES_LABEL}={marks[EXPIRES_LABEL]}")
    op = retry.call(c.firewalls.insert_unary, "firewalls.insert", project=c.project,
                    firewall_resource=rule)
    retry.wait_operation(lambda: c.global_operations.get(project=c.project, operation=op.name),
                         "firewalls.insert")


def _gone(exc: DCTError) -> bool:
    return getattr(exc, "reason", "") == "notFound" or "not found" in exc.message.lower()


def delete_retrying(delete: Callable[[], None], attempts: int) -> list[BaseException]:
    """Run *delete* (the call and the wait for its operation) until it succeeds or the resource
    is gone, at most *attempts* times: the error of the last attempt, if every one failed."""
    return sweep.delete(delete, gone=_gone, sleep=retry.sleep, attempts=attempts)


def delete_firewall(c: Clients, name: str, attempts: int = 3) -> list[BaseException]:
    """Delete a rule (already gone is fine), retrying a failed delete operation."""
    def delete() -> None:
        op = retry.call(c.firewalls.delete_unary, "firewalls.delete", project=c.project,
                        firewall=name)
        retry.wait_operation(lambda: c.global_operations.get(project=c.project,
                                                             operation=op.name),
                             "firewalls.delete")
    return delete_retrying(delete, attempts)


def delete_instance(c: Clients, zone: str, name: str, attempts: int = 3,
                    timeout: float = 600.0) -> list[BaseException]:
    """Delete an instance (its boot disk goes with it), retrying a failed delete operation."""
    def delete() -> None:
        op = retry.call(c.instances.delete_unary, "instances.delete", project=c.project,
                        zone=zone, instance=name)
        retry.wait_operation(lambda: c.zone_operations.get(project=c.project, zone=zone,
                                                           operation=op.name),
                             "instances.delete", timeout)
    return delete_retrying(delete, attempts)


def get_instance(c: Clients, zone: str, name: str) -> Any:
    return retry.call(c.instances.get, "instances.get", project=c.project, zone=zone, instance=name)

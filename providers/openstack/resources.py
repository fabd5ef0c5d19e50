"""What a run creates on OpenStack: a key pair, a security group, a server, all marked with the run.

The server carries the metadata ``dct-run-id`` and ``dct-expires``; a security group has no
metadata, so both are in its description; a Nova key pair has neither, so the expiry is in its
name (``dct-YYYYMMDDtHHMMSSz-xxxxxxxx``, the name every resource of the run shares).  An image
`publish` uploads carries both, and ``dct-uploaded-sha256``, as Glance properties.
:mod:`gc` reads all three.  SSH is opened to this runner's own address only.
"""

from __future__ import annotations

import ipaddress
import re
import time
import uuid
from datetime import datetime
from typing import Any

from debian_cloud_tests import expiry, sweep
from debian_cloud_tests.errors import DCTError

from . import retry
from .errors import OpenStackError, is_gone

RUN_ID_KEY = "dct-run-id"
EXPIRES_KEY = "dct-expires"
#: on an image `publish` uploaded: the sha256 of its bytes (a Glance property, as the two above)
SHA256_KEY = "dct-uploaded-sha256"
_NAME = re.compile(r"^dct-(?P<expires>\d{8}t\d{6}z)-[0-9a-f]{8}$")
_DESC = re.compile(rf"{RUN_ID_KEY}=(?P<run>\S+) {EXPIRES_KEY}=(?P<expires>\S+)")


def marks(run_id: str, now: datetime | None = None) -> dict[str, str]:
    """The server metadata of a run: its id and its expiry (ISO 8601, UTC)."""
    return {RUN_ID_KEY: run_id[:255], EXPIRES_KEY: expiry.mark(now)}


def run_name(expires: str) -> str:
    """``dct-<expiry>-<random>``: legal for servers, key pairs and groups, and tells gc the expiry."""
    when = expiry.parse(expires) or expiry.expires()
    return f"dct-{when.strftime(expiry.COMPACT)}-{uuid.uuid4().hex[:8]}"


def is_run_name(name: object) -> bool:
    """Whether *name* is exactly one :func:`run_name` could have made."""
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def name_expiry(name: str) -> str | None:
    """The expiry mark a :func:`run_name` carries (None for any other name)."""
    m = _NAME.match(name or "")
    return m["expires"] if m else None


def description_marks(description: str | None) -> dict[str, str]:
    """The run id and expiry written into a security group's description ({} if not ours)."""
    m = _DESC.search(description or "")
    return {RUN_ID_KEY: m["run"], EXPIRES_KEY: m["expires"]} if m else {}


def create_keypair(conn: Any, name: str, public_key: str) -> None:
    retry.call(conn.compute.create_keypair, "create key pair", name=name, public_key=public_key)


def create_security_group(conn: Any, name: str, cidr: str, run: dict[str, str]) -> str:
    """A group allowing tcp:22 from *cidr* only (Neutron adds its default egress rules)."""
    group = retry.call(conn.network.create_security_group, "create security group", name=name,
                       description=f"debian-cloud-tests: SSH from the test runner only; "
                                   f"{RUN_ID_KEY}={run[RUN_ID_KEY]} {EXPIRES_KEY}={run[EXPIRES_KEY]}")
    version = ipaddress.ip_network(cidr).version
    retry.call(conn.network.create_security_group_rule, "create security group rule",
               security_group_id=group.id, direction="ingress", protocol="tcp", port_range_min=22,
               port_range_max=22, remote_ip_prefix=cidr, ethertype=f"IPv{version}")
    return str(group.id)


def _with_retries(delete: Any, attempts: int) -> list[BaseException]:
    """Run *delete* (already gone counts as done), trying again when it fails."""
    return sweep.delete(delete, gone=is_gone, sleep=retry.sleep, attempts=attempts)


def delete_keypair(conn: Any, name: str, attempts: int = 3) -> list[BaseException]:
    return _with_retries(lambda: retry.call(conn.compute.delete_keypair, f"delete key pair {name}",
                                            name, ignore_missing=False), attempts)


def delete_security_group(conn: Any, group_id: str, attempts: int = 3) -> list[BaseException]:
    """Neutron refuses (409) while a deleted server's port still holds the group: tried again."""
    return _with_retries(lambda: retry.call(conn.network.delete_security_group,
                                            f"delete security group {group_id}", group_id,
                                            ignore_missing=False), attempts)


def delete_image(conn: Any, image_id: str, attempts: int = 3) -> list[BaseException]:
    return _with_retries(lambda: retry.call(conn.image.delete_image, f"delete image {image_id}",
                                            image_id, ignore_missing=False), attempts)


def delete_server(conn: Any, server_id: str, attempts: int = 3,
                  timeout: float = 300.0) -> list[BaseException]:
    """Delete a server and wait until Nova no longer lists it (its ports go with it)."""
    def delete() -> None:
        retry.call(conn.compute.delete_server, f"delete server {server_id}", server_id,
                   ignore_missing=False)
        deadline = time.monotonic() + timeout
        delay = 0.5
        while True:
            try:
                server = retry.call(conn.compute.get_server, f"get server {server_id}", server_id)
            except DCTError as exc:
                if is_gone(exc):
                    return
                raise
            if time.monotonic() >= deadline:
                raise OpenStackError(f"openstack: server {server_id} still {server.status} "
                                     f"{timeout:.0f}s after its deletion")
            retry.sleep(min(delay, max(deadline - time.monotonic(), 0.0)))
            delay = min(delay * 2, 10.0)

    return _with_retries(delete, attempts)


def servers_named(conn: Any, name: str) -> list[str]:
    """Ids of the servers called exactly *name*: a create whose answer was lost still has one."""
    found = retry.call(lambda: list(conn.compute.servers(name=f"^{re.escape(name)}$")), "list servers")
    return [str(s.id) for s in found if s.name == name]


def security_groups_named(conn: Any, name: str) -> list[str]:
    """Ids of the security groups called exactly *name*: one whose create answer was lost, or
    whose rule could not be added, is still found."""
    found = retry.call(lambda: list(conn.network.security_groups(name=name)), "list security groups")
    return [str(g.id) for g in found if g.name == name]

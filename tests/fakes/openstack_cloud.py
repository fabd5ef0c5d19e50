"""A small OpenStack over plain HTTP on 127.0.0.1, for the openstack provider's tests.

Keystone v3 (a password token whose catalog points back here), Nova (flavors, key pairs, servers,
reboot, console output), Glance v2 (images: list, create, upload, JSON-patch update, delete; the
bytes uploaded are kept) and Neutron v2 (networks, security groups and their rules): only what the
provider and the publisher call, in the JSON the real openstacksdk reads, version discovery
included.  It fails as clouds do when told to: Nova's quota answers (403, or 413 without
Retry-After), throttling (429 with Retry-After), a server stuck in BUILD, a console that is empty
for the first reads, a delete that fails once.

With :attr:`FakeOpenStack.guests` set, a server of an image that maps to a local file is a real QEMU
guest (see :mod:`.qemu_guests`): its fixed address is the guest's loopback address, its metadata
service a :class:`NovaMetadataServer`, its SMBIOS "OpenStack Nova" (so cloud-init picks its
OpenStack datasource), its console the QEMU console, and reboot and delete act on the guest.

With :attr:`FakeOpenStack.namespace` also set (a network namespace of the test's own, see
:mod:`.netns`), the guests get a project network's private addresses instead: a server's fixed
address is one of ``10.0.0.0/24`` on the namespace's loopback (SSH is on its published address,
``accessIPv4``, the loopback one), its guest's user network has a router, and a TCP port a rule
of the server's security group opens to another server of the network (by remote prefix) is
forwarded from its fixed address to its guest (QEMU's hostfwd, added and removed as rules and
servers change).  One guest reaching another's fixed address goes out through its user network
into the namespace and in through the other's forward; nothing gets further than the namespace.
"""

from __future__ import annotations

import hashlib
import ipaddress
import itertools
import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import yaml

from debian_cloud_tests.datasources.httpserve import LoopbackHttpServer

from .netns import PrivateNamespace
from .nova_qemu import nova_guest
from .qemu_guests import MAX_FORWARDED_PORTS, QemuGuests

REGION = "RegionOne"
#: the fixed addresses of servers on the private network (in a namespace: see the module doc)
PRIVATE_NET = "10.0.0"
ZONE = "nova"
PROJECT_ID = "0123456789abcdef0123456789abcdef"
PASSWORD = "s3cret-Pa55word"
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeOpenStackHostKey"
CONSOLE = ("Booting Debian\n-----BEGIN SSH HOST KEY KEYS-----\n" + HOST_KEY +
           " root@dct\n-----END SSH HOST KEY KEYS-----\n")

ROUTES = [
    ("GET", r"/v3/?", "identity.version"),
    ("POST", r"/v3/auth/tokens", "identity.token"),
    ("GET", r"/compute/?", "compute.versions"),
    ("GET", r"/compute/v2\.1/?", "compute.version"),
    ("GET", r"/compute/v2\.1/flavors/detail", "flavors.list"),
    ("GET", r"/compute/v2\.1/flavors/(?P<id>[^/]+)", "flavors.get"),
    ("GET", r"/compute/v2\.1/os-keypairs", "keypairs.list"),
    ("POST", r"/compute/v2\.1/os-keypairs", "keypairs.create"),
    ("GET", r"/compute/v2\.1/os-keypairs/(?P<id>[^/]+)", "keypairs.get"),
    ("DELETE", r"/compute/v2\.1/os-keypairs/(?P<id>[^/]+)", "keypairs.delete"),
    ("GET", r"/compute/v2\.1/servers/detail", "servers.list"),
    ("POST", r"/compute/v2\.1/servers", "servers.create"),
    ("GET", r"/compute/v2\.1/servers/(?P<id>[^/]+)", "servers.get"),
    ("DELETE", r"/compute/v2\.1/servers/(?P<id>[^/]+)", "servers.delete"),
    ("POST", r"/compute/v2\.1/servers/(?P<id>[^/]+)/action", "servers.action"),
    ("GET", r"/image/?", "image.versions"),
    ("GET", r"/image/v2/images", "images.list"),
    ("GET", r"/image/v2/images/(?P<id>[^/]+)", "images.get"),
    ("POST", r"/image/v2/images", "images.create"),
    ("PUT", r"/image/v2/images/(?P<id>[^/]+)/file", "images.upload"),
    ("PATCH", r"/image/v2/images/(?P<id>[^/]+)", "images.update"),
    ("DELETE", r"/image/v2/images/(?P<id>[^/]+)", "images.delete"),
    ("GET", r"/network/?", "network.versions"),
    ("GET", r"/network/v2\.0/networks", "networks.list"),
    ("GET", r"/network/v2\.0/networks/(?P<id>[^/]+)", "networks.get"),
    ("GET", r"/network/v2\.0/security-groups", "security_groups.list"),
    ("POST", r"/network/v2\.0/security-groups", "security_groups.create"),
    ("GET", r"/network/v2\.0/security-groups/(?P<id>[^/]+)", "security_groups.get"),
    ("DELETE", r"/network/v2\.0/security-groups/(?P<id>[^/]+)", "security_groups.delete"),
    ("GET", r"/network/v2\.0/security-group-rules", "security_group_rules.list"),
    ("POST", r"/network/v2\.0/security-group-rules", "security_group_rules.create"),
    ("DELETE", r"/network/v2\.0/security-group-rules/(?P<id>[^/]+)", "security_group_rules.delete"),
]
#: what makes two Neutron rules the same (a second is refused with 409 SecurityGroupRuleExists)
RULE_KEY = ("security_group_id", "direction", "ethertype", "protocol", "port_range_min",
            "port_range_max", "remote_ip_prefix", "remote_group_id")


class HttpFault(Exception):
    """An error answer: status, the body's wrapper key (``forbidden``, ``overLimit``…), headers."""

    def __init__(self, status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message
        self.headers = headers or {}


@dataclass
class FakeOpenStack:
    """The state of one project, and the faults to inject."""

    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    flavors: dict[str, dict[str, Any]] = field(default_factory=dict)
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)
    keypairs: dict[str, dict[str, Any]] = field(default_factory=dict)
    servers: dict[str, dict[str, Any]] = field(default_factory=dict)
    security_groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    faults: dict[str, list[HttpFault]] = field(default_factory=dict)
    lost_replies: dict[str, int] = field(default_factory=dict)  # done, but answered 503
    tokens: list[str] = field(default_factory=list)
    stuck: bool = False  # servers never leave BUILD
    config_drive: bool = False  # the cloud forces a config drive
    empty_console_reads: int = 0
    console_reads: int = 0
    reboots: list[tuple[str, str]] = field(default_factory=list)
    url: str = ""
    guests: QemuGuests | None = None  # set: servers of local images boot for real
    #: the bytes uploaded to each image (PUT /v2/images/{id}/file), as Glance stored them
    image_data: dict[str, bytes] = field(default_factory=dict)
    #: Glance's image_size_cap: a larger upload is refused (413), as Glance refuses it
    image_size_cap: int | None = None
    #: set: the servers' network is private, in this namespace of the test's (see the module doc)
    namespace: PrivateNamespace | None = None
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.add_image("debian-12-genericcloud-amd64", "x86_64")
        self.add_image("debian-12-genericcloud-arm64", "aarch64", hw_firmware_type="uefi")
        for name, vcpus, ram, disk in (("m1.tiny", 1, 512, 1), ("m1.small", 1, 2048, 20),
                                       ("m1.medium", 2, 4096, 40)):
            fid = str(next(self._ids))
            self.flavors[fid] = {"id": fid, "name": name, "vcpus": vcpus, "ram": ram, "disk": disk,
                                 "OS-FLV-EXT-DATA:ephemeral": 0, "swap": "", "rxtx_factor": 1.0,
                                 "os-flavor-access:is_public": True, "OS-FLV-DISABLED:disabled": False}
        self.add_network("public")

    def add_image(self, name: str, arch: str, **props: Any) -> str:
        iid = str(uuid.uuid4())
        self.images[iid] = {"id": iid, "name": name, "status": "active", "architecture": arch,
                            "min_disk": 2, "min_ram": 0, "size": 2 * 1024**3, "disk_format": "qcow2",
                            "container_format": "bare", "visibility": "public", "tags": [],
                            "created_at": "2026-01-01T00:00:00Z", **props}
        return iid

    def add_network(self, name: str, external: bool = False) -> str:
        nid = str(uuid.uuid4())
        self.networks[nid] = {"id": nid, "name": name, "status": "ACTIVE", "shared": True,
                              "router:external": external, "subnets": [], "admin_state_up": True,
                              "tenant_id": PROJECT_ID, "project_id": PROJECT_ID}
        return nid

    def _private_address(self) -> str:
        """The next fixed address of the private network, added to the namespace's loopback."""
        assert self.namespace is not None
        address = f"{PRIVATE_NET}.{next(self._ids) + 10}"
        self.namespace.add_loopback_address(address)
        return address

    def fail(self, action: str, status: int, message: str = "", times: int = 1,
             retry_after: str | None = None, kind: str = "") -> None:
        """The next *times* calls of *action* answer HTTP *status* (with Retry-After if given)."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        kind = kind or {403: "forbidden", 413: "overLimit", 429: "overLimit", 409: "conflict"}.get(
            status, "computeFault")
        self.faults.setdefault(action, []).extend(
            [HttpFault(status, kind, message or f"{kind} (injected)", headers)] * times)

    def leftovers(self) -> dict[str, list[str]]:
        found = {"servers": sorted(s["name"] for s in self.servers.values()),
                 "keypairs": sorted(self.keypairs),
                 "security_groups": sorted(g["name"] for g in self.security_groups.values()
                                           if g["name"] != "default")}
        return {k: v for k, v in found.items() if v}

    def created_images(self) -> list[dict[str, Any]]:
        """The images made through the API (not the two the fake starts with)."""
        return [i for i in self.images.values() if i.get("owner") == PROJECT_ID]

    def clouds_yaml(self, path: Path, name: str = "fake") -> Path:
        """A clouds.yaml naming this fake as cloud *name*."""
        path.write_text(yaml.safe_dump({"clouds": {name: {
            "auth": {"auth_url": f"{self.url}/v3", "username": "dct", "password": PASSWORD,
                     "project_name": "dct", "user_domain_name": "Default",
                     "project_domain_name": "Default"},
            "region_name": REGION, "identity_api_version": 3, "interface": "public"}}}))
        return path

    # -- the API -------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], body: Any,
               headers: Any) -> tuple[int, Any, dict[str, str]]:
        """One request: *body* is its JSON, or its bytes when sent as application/octet-stream."""
        for verb, pattern, action in ROUTES:
            m = re.fullmatch(pattern, path)
            if verb == method and m:
                with self.lock:
                    self.calls.append(action)
                    pending = self.faults.get(action)
                    if pending:
                        raise pending.pop(0)
                    if not action.startswith(("identity.", "compute.v", "image.v", "network.v")) and \
                            headers.get("X-Auth-Token") not in self.tokens:
                        raise HttpFault(401, "error", "The request you have made requires authentication.")
                    handler = getattr(self, "_" + action.replace(".", "_"))
                    answer = handler(query, body, **m.groupdict())
                    if self.lost_replies.get(action):
                        self.lost_replies[action] -= 1
                        raise HttpFault(503, "computeFault", "the reply was lost on the way")
                    return answer
        raise HttpFault(404, "itemNotFound", f"no route for {method} {path}")

    def _identity_version(self, q: Any, b: Any) -> Any:
        return 200, {"version": {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
                                 "links": [{"rel": "self", "href": f"{self.url}/v3/"}],
                                 "media-types": [{"base": "application/json",
                                                  "type": "application/vnd.openstack.identity-v3+json"}]}}, {}

    def _identity_token(self, q: Any, body: dict[str, Any]) -> Any:
        user = body["auth"]["identity"]["password"]["user"]
        if user.get("password") != PASSWORD:
            raise HttpFault(401, "error", "The request you have made requires authentication.")
        token = uuid.uuid4().hex
        self.tokens.append(token)
        domain = {"id": "default", "name": "Default"}
        catalog = [{"type": kind, "name": name, "id": uuid.uuid4().hex, "endpoints": [
            {"id": uuid.uuid4().hex, "interface": "public", "region": REGION, "region_id": REGION,
             "url": f"{self.url}{path}"}]}
            for kind, name, path in (("compute", "nova", "/compute/v2.1"), ("image", "glance", "/image"),
                                     ("network", "neutron", "/network"),
                                     ("identity", "keystone", "/v3"))]
        return 201, {"token": {
            "methods": ["password"], "expires_at": "2099-01-01T00:00:00.000000Z",
            "issued_at": "2026-01-01T00:00:00.000000Z", "audit_ids": [uuid.uuid4().hex],
            "user": {"id": uuid.uuid4().hex, "name": user.get("name", "dct"), "domain": domain,
                     "password_expires_at": None},
            "project": {"id": PROJECT_ID, "name": "dct", "domain": domain},
            "roles": [{"id": uuid.uuid4().hex, "name": "member"}], "catalog": catalog}}, \
            {"X-Subject-Token": token}

    def _compute_version_doc(self) -> dict[str, Any]:
        return {"id": "v2.1", "status": "CURRENT", "version": "2.79", "min_version": "2.1",
                "updated": "2013-07-23T11:33:21Z",
                "links": [{"rel": "self", "href": f"{self.url}/compute/v2.1/"}]}

    def _compute_versions(self, q: Any, b: Any) -> Any:
        return 200, {"versions": [self._compute_version_doc()]}, {}

    def _compute_version(self, q: Any, b: Any) -> Any:
        return 200, {"version": self._compute_version_doc()}, {}

    def _image_versions(self, q: Any, b: Any) -> Any:
        return 300, {"versions": [{"id": "v2.16", "status": "CURRENT",
                                   "links": [{"rel": "self", "href": f"{self.url}/image/v2/"}]}]}, {}

    def _network_versions(self, q: Any, b: Any) -> Any:
        return 200, {"versions": [{"id": "v2.0", "status": "CURRENT",
                                   "links": [{"rel": "self", "href": f"{self.url}/network/v2.0/"}]}]}, {}

    # Nova ----------------------------------------------------------------------------------------

    def _flavors_list(self, q: Any, b: Any) -> Any:
        return 200, {"flavors": list(self.flavors.values())}, {}

    def _flavors_get(self, q: Any, b: Any, id: str) -> Any:
        if id not in self.flavors:
            raise HttpFault(404, "itemNotFound", f"Flavor {id} could not be found.")
        return 200, {"flavor": self.flavors[id]}, {}

    def _keypairs_list(self, q: Any, b: Any) -> Any:
        return 200, {"keypairs": [{"keypair": k} for k in self.keypairs.values()]}, {}

    def _keypairs_get(self, q: Any, b: Any, id: str) -> Any:
        if id not in self.keypairs:
            raise HttpFault(404, "itemNotFound", f"Keypair {id} not found for user")
        return 200, {"keypair": self.keypairs[id]}, {}

    def _keypairs_create(self, q: Any, body: dict[str, Any]) -> Any:
        kp = body["keypair"]
        if kp["name"] in self.keypairs:
            raise HttpFault(409, "conflictingRequest", f"Key pair '{kp['name']}' already exists.")
        self.keypairs[kp["name"]] = {"name": kp["name"], "public_key": kp.get("public_key", ""),
                                     "fingerprint": "00:11", "type": kp.get("type", "ssh"),
                                     "user_id": "dct"}
        return 200, {"keypair": self.keypairs[kp["name"]]}, {}

    def _keypairs_delete(self, q: Any, b: Any, id: str) -> Any:
        if id not in self.keypairs:
            raise HttpFault(404, "itemNotFound", f"Keypair {id} not found for user")
        del self.keypairs[id]
        return 202, None, {}

    def _servers_create(self, q: Any, body: dict[str, Any]) -> Any:
        s = body["server"]
        if s.get("imageRef") not in self.images:
            raise HttpFault(400, "badRequest", f"Can not find requested image {s.get('imageRef')}")
        if s.get("flavorRef") not in self.flavors:
            raise HttpFault(400, "badRequest", f"Flavor {s.get('flavorRef')} could not be found.")
        if s.get("key_name") and s["key_name"] not in self.keypairs:
            raise HttpFault(400, "badRequest", f"Invalid key_name provided: {s['key_name']}")
        groups = [g["name"] for g in s.get("security_groups") or []]
        for g in groups:
            if not any(g in (sg["name"], sg["id"]) for sg in self.security_groups.values()):
                raise HttpFault(400, "badRequest", f"Security group {g} not found for project")
        sid = str(uuid.uuid4())
        nets = s.get("networks") or []
        net = self.networks.get(nets[0].get("uuid", "")) if isinstance(nets, list) and nets else None
        backed = self.guests is not None and s["imageRef"] in self.guests.images
        address = self.guests.next_address() if backed and self.guests else f"127.0.0.{len(self.servers) + 2}"
        # in a namespace: a fixed address of the private network, SSH on the published one
        fixed = self._private_address() if backed and self.namespace is not None else address
        flavor = self.flavors[s["flavorRef"]]
        self.servers[sid] = {
            "id": sid, "name": s["name"], "status": "BUILD", "tenant_id": PROJECT_ID,
            "user_id": "dct", "metadata": dict(s.get("metadata") or {}), "key_name": s.get("key_name"),
            "image": {"id": s["imageRef"]}, "user_data": s.get("user_data"),
            "flavor": {"original_name": flavor["name"], "vcpus": flavor["vcpus"], "ram": flavor["ram"],
                       "disk": flavor["disk"], "ephemeral": 0, "swap": 0, "extra_specs": {}},
            "security_groups": [{"name": g} for g in groups],
            "addresses": {(net or {"name": "public"})["name"]: [
                {"addr": fixed, "version": 4, "OS-EXT-IPS:type": "fixed"}]},
            "accessIPv4": address if fixed != address else "", "accessIPv6": "",
            "config_drive": "True" if self.config_drive or s.get("config_drive") else "",
            "OS-EXT-AZ:availability_zone": s.get("availability_zone") or ZONE,
            "OS-EXT-STS:task_state": "spawning", "OS-EXT-STS:vm_state": "building",
            "OS-EXT-STS:power_state": 0, "created": "2026-01-01T12:00:00Z", "links": [],
            "tags": list(s.get("tags") or []), "networks_requested": nets, "fixed": fixed,
            "network_id": (net or {}).get("id", "")}
        if backed:
            self._boot_later(sid, address, net)
        return 202, {"server": {"id": sid, "links": [], "adminPass": "unused",
                                "security_groups": [{"name": g} for g in groups]}}, {}

    def _boot_later(self, sid: str, address: str, net: dict[str, Any] | None) -> None:
        """Nova answers a create at once and boots in the background: the server is BUILD until
        its guest runs (ERROR, with a fault, if it cannot start)."""
        server = self.servers[sid]

        def boot() -> None:
            assert self.guests is not None
            try:
                image = self.images[server["image"]["id"]]
                keys = {server["key_name"]: self.keypairs[server["key_name"]]["public_key"]} \
                    if server.get("key_name") in self.keypairs else {}
                self.guests.boot(sid, address, *nova_guest(
                    server, self.guests.images[image["id"]], image, keys, (net or {}).get("id", ""),
                    address, ec2_index=len(self.servers), project_id=PROJECT_ID, region=REGION,
                    fixed=server["fixed"], private_net=self.namespace is not None))
                update = {"status": "ACTIVE", "OS-EXT-STS:vm_state": "active", "OS-EXT-STS:power_state": 1}
            except Exception as exc:
                update = {"status": "ERROR", "OS-EXT-STS:vm_state": "error",
                          "fault": {"code": 500, "message": f"boot failed: {exc}"}}
            with self.lock:
                server.update({**update, "OS-EXT-STS:task_state": None, "booted": True})
                self._rules_changed()

        server["booted"] = False
        threading.Thread(target=boot, name=f"nova-boot-{sid[:8]}", daemon=True).start()

    def _server(self, sid: str) -> dict[str, Any]:
        if sid not in self.servers:
            raise HttpFault(404, "itemNotFound", f"Instance {sid} could not be found.")
        return self.servers[sid]

    def _servers_get(self, q: Any, b: Any, id: str) -> Any:
        server = self._server(id)
        if not self.stuck and server["status"] == "BUILD" and server.get("booted", True):
            server.update({"status": "ACTIVE", "OS-EXT-STS:task_state": None,
                           "OS-EXT-STS:vm_state": "active", "OS-EXT-STS:power_state": 1})
        return 200, {"server": _shown(server)}, {}

    def _servers_list(self, q: Any, b: Any) -> Any:
        return 200, {"servers": [_shown(s) for s in self.servers.values()]}, {}

    def _servers_delete(self, q: Any, b: Any, id: str) -> Any:
        self._server(id)
        del self.servers[id]
        if self.guests is not None:
            self.guests.stop(id)
            self._rules_changed()
        return 204, None, {}

    def _servers_action(self, q: Any, body: dict[str, Any], id: str) -> Any:
        server = self._server(id)
        if "reboot" in body:
            self.reboots.append((server["name"], body["reboot"]["type"]))
            if self.guests is not None:
                self.guests.reboot(id)
            return 202, None, {}
        if "os-getConsoleOutput" in body:
            self.console_reads += 1
            text = "" if self.console_reads <= self.empty_console_reads else CONSOLE
            if self.guests is not None and id in self.guests.guests:
                text = self.guests.console(id)
            length = (body["os-getConsoleOutput"] or {}).get("length")
            if length is not None and int(length) >= 0:
                text = "\n".join(text.splitlines()[-int(length):])
            return 200, {"output": text}, {}
        raise HttpFault(400, "badRequest", f"unsupported action {sorted(body)}")

    # Glance ---------------------------------------------------------------------------------------

    def _images_list(self, q: dict[str, str], b: Any) -> Any:
        found = [i for i in self.images.values() if "name" not in q or i["name"] == q["name"]]
        return 200, {"images": found, "first": "/v2/images", "schema": "/v2/schemas/images"}, {}

    def _images_get(self, q: Any, b: Any, id: str) -> Any:
        if id not in self.images:
            raise HttpFault(404, "itemNotFound", f"No image found with ID {id}")
        return 200, self.images[id], {}

    def _images_create(self, q: Any, body: dict[str, Any]) -> Any:
        """Glance v2: every attribute but the core ones is a string property at the top level."""
        iid = body.get("id") or str(uuid.uuid4())
        if iid in self.images:
            raise HttpFault(409, "conflict", f"Image with identifier {iid} already exists!")
        for key in ("disk_format", "container_format"):
            if key not in body:
                raise HttpFault(400, "badRequest", f"{key} is required to upload data")
        extra = {k: v for k, v in body.items() if k not in _IMAGE_CORE}
        bad = [k for k, v in extra.items() if not isinstance(v, str)]
        if bad:
            raise HttpFault(400, "badRequest", f"properties must be strings: {', '.join(bad)}")
        self.images[iid] = {
            "id": iid, "name": body.get("name"), "status": "queued", "visibility":
            body.get("visibility", "shared"), "owner": PROJECT_ID, "protected": bool(body.get("protected")),
            "disk_format": body["disk_format"], "container_format": body["container_format"],
            "min_disk": int(body.get("min_disk") or 0), "min_ram": int(body.get("min_ram") or 0),
            "size": None, "virtual_size": None, "checksum": None, "os_hash_algo": None,
            "os_hash_value": None, "tags": list(body.get("tags") or []),
            "created_at": "2026-01-01T12:00:00Z", "updated_at": "2026-01-01T12:00:00Z",
            "self": f"/v2/images/{iid}", "file": f"/v2/images/{iid}/file",
            "schema": "/v2/schemas/image", **extra}
        return 201, self.images[iid], {}

    def _images_upload(self, q: Any, data: bytes, id: str) -> Any:
        image = self.images.get(id)
        if image is None:
            raise HttpFault(404, "itemNotFound", f"No image found with ID {id}")
        if image["status"] != "queued":
            raise HttpFault(409, "conflict", f"Image status transition from {image['status']} to "
                                             "saving is not allowed")
        if self.image_size_cap is not None and len(data) > self.image_size_cap:
            image["status"] = "queued"
            raise HttpFault(413, "RequestEntityTooLarge", "Image exceeds the storage quota: The "
                            f"size of the data {len(data)} will exceed the limit "
                            f"({self.image_size_cap} bytes remaining).")
        self.image_data[id] = data
        image.update({"status": "active", "size": len(data), "virtual_size": len(data),
                      "checksum": hashlib.md5(data).hexdigest(), "os_hash_algo": "sha512",
                      "os_hash_value": hashlib.sha512(data).hexdigest()})
        return 204, None, {}

    def _images_update(self, q: Any, patch: list[dict[str, Any]], id: str) -> Any:
        """A JSON patch (application/openstack-images-v2.1-json-patch) of top-level keys."""
        image = self.images.get(id)
        if image is None:
            raise HttpFault(404, "itemNotFound", f"No image found with ID {id}")
        for op in patch:
            key = op["path"].lstrip("/")
            if key in _IMAGE_READ_ONLY:
                raise HttpFault(403, "forbidden", f"Attribute '{key}' is read-only.")
            if op["op"] in ("add", "replace"):
                image[key] = op["value"]
            elif op["op"] == "remove":
                if key not in image:
                    raise HttpFault(409, "conflict", f"Property {key} does not exist.")
                del image[key]
            else:
                raise HttpFault(400, "badRequest", f"unsupported patch op {op['op']}")
        return 200, image, {}

    def _images_delete(self, q: Any, b: Any, id: str) -> Any:
        image = self.images.get(id)
        if image is None:
            raise HttpFault(404, "itemNotFound", f"No image found with ID {id}")
        if image.get("protected"):
            raise HttpFault(403, "forbidden", f"Image {id} is protected and cannot be deleted.")
        del self.images[id]
        self.image_data.pop(id, None)
        return 204, None, {}

    # Neutron --------------------------------------------------------------------------------------

    def _networks_list(self, q: dict[str, str], b: Any) -> Any:
        found = [n for n in self.networks.values() if "name" not in q or n["name"] == q["name"]]
        return 200, {"networks": found}, {}

    def _networks_get(self, q: Any, b: Any, id: str) -> Any:
        if id not in self.networks:
            raise HttpFault(404, "NetworkNotFound", f"Network {id} could not be found.")
        return 200, {"network": self.networks[id]}, {}

    def _security_groups_list(self, q: dict[str, str], b: Any) -> Any:
        found = [g for g in self.security_groups.values() if "name" not in q or g["name"] == q["name"]]
        return 200, {"security_groups": found}, {}

    def _security_groups_get(self, q: Any, b: Any, id: str) -> Any:
        if id not in self.security_groups:
            raise HttpFault(404, "SecurityGroupNotFound", f"Security group {id} does not exist")
        return 200, {"security_group": self.security_groups[id]}, {}

    def _security_groups_create(self, q: Any, body: dict[str, Any]) -> Any:
        sg = body["security_group"]
        gid = str(uuid.uuid4())
        egress = [{"id": str(uuid.uuid4()), "direction": "egress", "ethertype": e, "protocol": None,
                   "port_range_min": None, "port_range_max": None, "remote_ip_prefix": None,
                   "security_group_id": gid} for e in ("IPv4", "IPv6")]
        self.security_groups[gid] = {"id": gid, "name": sg["name"], "description": sg.get("description", ""),
                                     "tenant_id": PROJECT_ID, "project_id": PROJECT_ID, "tags": [],
                                     "security_group_rules": egress, "stateful": True}
        return 201, {"security_group": self.security_groups[gid]}, {}

    def _security_groups_delete(self, q: Any, b: Any, id: str) -> Any:
        group = self.security_groups.get(id)
        if group is None:
            raise HttpFault(404, "SecurityGroupNotFound", f"Security group {id} does not exist")
        if any(group["name"] in [g["name"] for g in s["security_groups"]] for s in self.servers.values()):
            raise HttpFault(409, "SecurityGroupInUse", f"Security Group {id} in use.")
        del self.security_groups[id]
        return 204, None, {}

    def _rules(self) -> Iterator[dict[str, Any]]:
        return (r for g in self.security_groups.values() for r in g["security_group_rules"])

    def _security_group_rules_list(self, q: dict[str, str], b: Any) -> Any:
        found = [r for r in self._rules() if all(str(r.get(k)) == v for k, v in q.items()
                                                 if k in (*RULE_KEY, "description", "id"))]
        return 200, {"security_group_rules": found}, {}

    def _security_group_rules_create(self, q: Any, body: dict[str, Any]) -> Any:
        rule = {"id": str(uuid.uuid4()), "description": "", "protocol": None, "port_range_min": None,
                "port_range_max": None, "remote_ip_prefix": None, "remote_group_id": None,
                "ethertype": "IPv4", **body["security_group_rule"]}
        group = self.security_groups.get(rule["security_group_id"])
        if group is None:
            raise HttpFault(404, "SecurityGroupNotFound", "Security group does not exist")
        same = [r for r in group["security_group_rules"]
                if all(r.get(k) == rule.get(k) for k in RULE_KEY)]
        if same:
            raise HttpFault(409, "SecurityGroupRuleExists", "Security group rule already exists. "
                            f"Rule id is {same[0]['id']}.")
        group["security_group_rules"].append(rule)
        self._rules_changed()
        return 201, {"security_group_rule": rule}, {}

    def _security_group_rules_delete(self, q: Any, b: Any, id: str) -> Any:
        for group in self.security_groups.values():
            kept = [r for r in group["security_group_rules"] if r["id"] != id]
            if len(kept) < len(group["security_group_rules"]):
                group["security_group_rules"] = kept
                self._rules_changed()
                return 204, None, {}
        raise HttpFault(404, "SecurityGroupRuleNotFound", f"Security group rule {id} does not exist")

    def ingress(self, group_id: str) -> list[tuple[str, int | None, str | None]]:
        """The group's ingress rules: (protocol, port, remote prefix), sorted."""
        return sorted(((r["protocol"], r["port_range_min"], r["remote_ip_prefix"])
                       for r in self.security_groups[group_id]["security_group_rules"]
                       if r["direction"] == "ingress"), key=str)

    # the private network (see the module doc) ----------------------------------------------------

    def _rules_changed(self) -> None:
        """Make the guests' forwards what their groups now open to the other servers."""
        if self.guests is None or self.namespace is None:
            return
        running = [s for s in self.servers.values() if s["id"] in self.guests.guests and s.get("fixed")]
        for server in running:
            self.guests.set_forwards(server["id"],
                                     {(server["fixed"], p) for p in self._opened(server, running)})

    def _opened(self, server: dict[str, Any], running: list[dict[str, Any]]) -> set[int]:
        """The TCP ports *server*'s groups open to another running server of its network."""
        others = [ipaddress.ip_address(s["fixed"]) for s in running
                  if s is not server and s["network_id"] == server["network_id"]]
        names = {g["name"] for g in server["security_groups"]}
        ports: set[int] = set()
        for group in self.security_groups.values():
            if not names & {group["id"], group["name"]}:
                continue
            for r in group["security_group_rules"]:
                low, high = r.get("port_range_min"), r.get("port_range_max")
                if r["direction"] != "ingress" or r.get("protocol") != "tcp" or low is None or \
                        high is None or high - low >= MAX_FORWARDED_PORTS or not r.get("remote_ip_prefix"):
                    continue
                if any(o in ipaddress.ip_network(r["remote_ip_prefix"]) for o in others):
                    ports.update(range(low, high + 1))
        return ports


#: Glance's own attributes; any other key of an image is a property
_IMAGE_CORE = frozenset({"id", "name", "visibility", "protected", "disk_format", "container_format",
                         "min_disk", "min_ram", "tags", "os_hidden"})
_IMAGE_READ_ONLY = frozenset({"id", "status", "owner", "size", "virtual_size", "checksum",
                              "os_hash_algo", "os_hash_value", "created_at", "updated_at", "self",
                              "file", "schema"})


def _shown(server: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in server.items()
            if k not in ("networks_requested", "booted", "fixed", "network_id")}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenStack
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        url = urlparse(self.path)
        raw = self._body()
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        headers: dict[str, str] = {}
        binary = self.headers.get("Content-Type", "").startswith("application/octet-stream")
        try:
            status, out, headers = self.fake.handle(self.command, url.path.rstrip("/") or "/", query,
                                                    raw if binary else json.loads(raw) if raw else {},
                                                    self.headers)
        except HttpFault as f:
            status, headers = f.status, f.headers
            out = ({"NeutronError": {"type": f.kind, "message": f.message, "detail": ""}}
                   if url.path.startswith("/network") else
                   {f.kind: {"code": f.status, "message": f.message}})
        data = json.dumps(out).encode() if out is not None else b""
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        """The request's body, sent whole (Content-Length) or in chunks (a streamed upload)."""
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""
        parts = []
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            parts.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline().strip():  # the trailer, up to its blank line
            pass
        return b"".join(parts)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def running_openstack() -> Iterator[FakeOpenStack]:
    fake = FakeOpenStack()
    server = LoopbackHttpServer(type("Handler", (_Handler,), {"fake": fake}), "openstack-fake")
    fake.url = f"http://127.0.0.1:{server.port}"
    server.start()
    try:
        yield fake
    finally:
        server.stop()

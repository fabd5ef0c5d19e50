"""A small Azure Resource Manager over plain HTTP on 127.0.0.1, for the azure provider's tests.

Generic where ARM is generic (PUT stores a resource, GET returns it, deleting a resource group
deletes everything in it) and every change is a long-running operation: 201/202 with an
``Azure-AsyncOperation`` URL the SDK's pollers follow.  It fails as Azure does when told to: an
HTTP error with ARM's error code (``Retry-After`` too, if given), an operation ending
``Failed``, a VM whose creation never finishes, a boot diagnostics log that is empty at first, a
group delete that fails once.  Images besides the marketplace's are read-only resources of
someone else's (never leftovers): gallery image versions with their image definitions
(:meth:`FakeArm.add_gallery_image`) and managed images (:meth:`FakeArm.add_managed_image`),
answered as Compute answers a missing one (404 ``NotFound``); managed images made by PUT are
resources like any other, listed with those of others, their tags changed by PATCH.  Compute's
provider answers the locations where images can be made (:attr:`FakeArm.locations`).  A gallery
of the publisher's (:meth:`FakeArm.add_gallery`) takes image definitions and versions by PUT (a
version's parents and its source image must exist; it is replicated at once to its
``publishingProfile.targetRegions``, as ``replicationStatus`` says), listed, changed by PATCH
(merged) and deleted (a definition only once empty); the gallery's ``share`` POST is recorded
(:attr:`FakeArm.shared`) and kept as its ``sharingProfile``.

With :attr:`FakeArm.guests` set, a VM of an image that maps to a local file is a real QEMU guest
(see :mod:`.azure_qemu`): its public address is the guest's loopback address, its creation runs
until the guest reports ready to the wireserver (as Azure's does), boot diagnostics serve the
guest's console, restart resets it and deleting the VM or its group stops it.  Networks, their
peerings, security rules and private addresses are as :mod:`.azure_net` says; with
:attr:`FakeArm.namespace` set the guests reach each other where those let them.  Served over HTTPS
(:func:`running_arm` with a CA) with a managed-identity token endpoint, it answers a plugin run
in another process through the SDK's default credential chain.
"""

from __future__ import annotations

import itertools
import json
import re
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from debian_cloud_tests.datasources.httpserve import LoopbackHttpServer

from . import azure_net
from .azure_boot import AzureBoots
from .qemu_guests import QemuGuests

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
LOCATION = "westeurope"
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeAzureHostKey"
CONSOLE = "-----BEGIN SSH HOST KEY KEYS-----\n" + HOST_KEY + " root@dct\n-----END SSH HOST KEY KEYS-----\n"
_IMAGE = re.compile(r".*/publishers/(?P<pub>[^/]+)/artifacttypes/vmimage/offers/(?P<offer>[^/]+)/skus/"
                    r"(?P<sku>[^/]+)/versions(?:/(?P<version>[^/]+))?$", re.I)


#: the publisher's offers (.../offers), or an offer's SKUs (.../offers/OFFER/skus)
_LISTING = re.compile(r".*/publishers/[^/]+/artifacttypes/vmimage/offers(?:/(?P<offer>[^/]+)/"
                      r"(?P<skus>skus))?$", re.I)
_PROVIDER = re.compile(r"/subscriptions/[^/]+/providers/microsoft\.compute")
#: every managed image of the subscription (made here, and someone else's)
_IMAGES = re.compile(r"/subscriptions/[^/]+/providers/microsoft\.compute/images")
_GROUP = r"/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.compute"
_MANAGED = re.compile(_GROUP + r"/images/[^/]+")
#: every gallery of the subscription
_GALLERIES = re.compile(r"/subscriptions/[^/]+/providers/microsoft\.compute/galleries")
_GALLERY = re.compile(_GROUP + r"/galleries/[^/]+")
#: a gallery's image definitions, a definition's versions
_GALLERY_LISTING = re.compile(_GALLERY.pattern + r"/images(?:/[^/]+/versions)?")
_COMPUTE_IMAGE = re.compile(r"/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.compute/"
                            r"(?:images/[^/]+|galleries/[^/]+/images/[^/]+(?:/versions/[^/]+)?)")


class Fault(Exception):
    def __init__(self, status: int, code: str, message: str = "",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message or code)
        self.status, self.code, self.message = status, code, message or f"{code} (injected)"
        self.headers = headers or {}


@dataclass
class FakeArm:
    url: str = ""
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    op_faults: dict[str, list[str]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    #: images of someone else's (galleries, managed images) by lower-case id: read, never created
    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: gallery id (lower case): the bodies of its ``share`` requests, in order
    shared: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: set: the managed-identity token endpoint refuses every request with this status and error
    token_refusal: tuple[int, str] | None = None
    stuck: bool = False
    empty_console_reads: int = 0
    console_reads: int = 0
    restarts: int = 0
    #: Debian's marketplace images: (offer, sku) -> versions, oldest first
    marketplace: dict[tuple[str, str], list[str]] = field(default_factory=lambda: {
        ("debian-12", sku): ["0.20260101.1"] for sku in ("12", "12-gen2", "12-arm64")})
    #: where the subscription can make images and VMs (Microsoft.Compute's resource types)
    locations: tuple[str, ...] = ("West Europe", "North Europe", "East US")
    guests: QemuGuests | None = None  # set: VMs of local images boot for real
    #: set (a tests.fakes.netns.PrivateNamespace): the guests are in it, their networks
    #: emulated (see :mod:`.azure_net`)
    namespace: Any = None
    boots: AzureBoots = field(default_factory=AzureBoots)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, kind: str, status: int, code: str, times: int = 1, message: str = "",
             retry_after: str | None = None) -> None:
        """The next *times* requests of *kind* ("PUT virtualMachines") answer *status*/*code*
        (with a ``Retry-After`` header when given)."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self.faults.setdefault(kind, []).extend([Fault(status, code, message, headers)] * times)

    def _marketplace_names(self, offer: str | None, skus: str | None) -> list[dict[str, Any]]:
        """The publisher's offers, or an offer's SKUs, as names with a location."""
        if offer is None:
            names = {o for o, _ in self.marketplace}
        else:
            names = {s for o, s in self.marketplace if o == offer}
        return [{"name": n, "location": LOCATION, "id": n} for n in sorted(names)]

    @staticmethod
    def _marketplace_version(base: str, sku: str, version: str) -> dict[str, Any]:
        return {"name": version, "location": LOCATION, "id": f"{base}/versions/{version}",
                "properties": {"architecture": "Arm64" if "arm64" in sku else "x64",
                               "hyperVGeneration": "V2" if "gen2" in sku or "arm64" in sku else "V1"}}

    def add_gallery_image(self, definition: str = "debian-12", version: str = "1.0.0",
                          arch: str = "x64", generation: str = "V2",
                          regions: tuple[str, ...] = ("West Europe",), group: str = "images",
                          gallery: str = "debian", subscription: str = SUBSCRIPTION) -> str:
        """A gallery image definition (architecture, Hyper-V generation) with one version
        replicated to *regions*; returns the version's id."""
        base = (f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Compute/"
                f"galleries/{gallery}/images/{definition}")
        self.images[base.lower()] = {
            "id": base, "name": definition, "location": LOCATION,
            "type": "Microsoft.Compute/galleries/images",
            "properties": {"osType": "Linux", "osState": "Generalized", "architecture": arch,
                           "hyperVGeneration": generation, "provisioningState": "Succeeded",
                           "identifier": {"publisher": "Debian", "offer": "debian-12", "sku": definition}}}
        vid = f"{base}/versions/{version}"
        self.images[vid.lower()] = {
            "id": vid, "name": version, "location": LOCATION,
            "type": "Microsoft.Compute/galleries/images/versions",
            "properties": {"provisioningState": "Succeeded", "publishingProfile": {
                "targetRegions": [{"name": r, "regionalReplicaCount": 1} for r in regions]},
                "storageProfile": {"osDiskImage": {"sizeInGB": 30}}}}
        return vid

    def add_gallery(self, name: str = "debian-publish", group: str = "galleries",
                    location: str = LOCATION) -> str:
        """A gallery of the publisher's (and its resource group): definitions and versions are
        made in it by PUT; returns its id."""
        gpath = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group}"
        self.resources.setdefault(gpath.lower(), {"id": gpath, "name": group, "location": location})
        gid = f"{gpath}/providers/Microsoft.Compute/galleries/{name}"
        self.resources[gid.lower()] = {"id": gid, "name": name, "location": location,
                                       "type": "Microsoft.Compute/galleries",
                                       "properties": {"provisioningState": "Succeeded"}}
        return gid

    def children(self, low: str) -> list[dict[str, Any]]:
        """The resources (ours and others') directly under the collection *low*."""
        under = re.compile(re.escape(low) + r"/[^/]+")
        return [r for p, r in {**self.images, **self.resources}.items() if under.fullmatch(p)]

    def add_managed_image(self, name: str = "debian-12-custom", generation: str | None = "V2",
                          location: str = LOCATION, group: str = "images") -> str:
        """A managed image in *location* (a Hyper-V generation, no architecture); returns its id."""
        iid = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group}/providers/Microsoft.Compute/"
               f"images/{name}")
        props: dict[str, Any] = {"provisioningState": "Succeeded", "storageProfile": {
            "osDisk": {"osType": "Linux", "osState": "Generalized"}}}
        if generation:
            props["hyperVGeneration"] = generation
        self.images[iid.lower()] = {"id": iid, "name": name, "location": location,
                                    "type": "Microsoft.Compute/images", "properties": props}
        return iid

    def fail_operation(self, kind: str, code: str, times: int = 1) -> None:
        """The operation started by the next *times* requests of *kind* ends Failed with *code*."""
        self.op_faults.setdefault(kind, []).extend([code] * times)

    def leftovers(self) -> dict[str, list[str]]:
        return {"resources": sorted(self.resources)} if self.resources else {}

    def groups(self) -> list[dict[str, Any]]:
        group = re.compile(r"/subscriptions/[^/]+/resourcegroups/[^/]+")
        return [r for p, r in self.resources.items() if group.fullmatch(p)]

    def _kind(self, method: str, path: str) -> str:
        parts = [p for p in path.split("/") if p]
        if method == "POST":
            return f"POST {parts[-1]}"
        type_ = parts[-2] if len(parts) % 2 == 0 else parts[-1]
        return f"{method} {type_}"

    def _async(self, kind: str, status: str = "Succeeded") -> dict[str, str]:
        name = f"op{next(self._ids)}"
        codes = self.op_faults.get(kind)
        op: dict[str, Any] = {"status": status, "name": name}
        if codes:
            op = {"status": "Failed", "name": name,
                  "error": {"code": codes.pop(0), "message": f"{kind} failed (injected)"}}
        self.operations[name] = op
        return {"Azure-AsyncOperation": f"{self.url}/asyncops/{name}", "Retry-After": "0"}

    def handle(self, method: str, path: str, query: dict[str, str], body: Any
               ) -> tuple[int, Any, dict[str, str]]:
        low = path.lower().rstrip("/")
        if low.startswith("/asyncops/"):
            with self.lock:
                self.calls.append("GET asyncops")
                pending = self.faults.get("GET asyncops")
                if pending:
                    raise pending.pop(0)
            op = self.operations[low.rsplit("/", 1)[-1]]
            return 200, op, {"Retry-After": "1" if op["status"] == "InProgress" else "0"}
        if low.startswith("/msi/token"):
            if self.token_refusal is not None:
                status, error = self.token_refusal
                return status, {"error": error, "error_description": f"{error} (injected)"}, {}
            return 200, {"access_token": "stub-token", "expires_on": str(int(time.time()) + 3600),
                         "resource": query.get("resource", ""), "token_type": "Bearer"}, {}
        if low.startswith("/blobs/"):
            if self.guests is not None and self.boots.vm_id(low.split("/")[2]):
                return 200, self.guests.console(self.boots.vm_id(low.split("/")[2])), {}
            self.console_reads += 1
            if self.console_reads <= self.empty_console_reads:
                return 404, {"error": {"code": "BlobNotFound"}}, {}
            return 200, CONSOLE, {}
        kind = self._kind(method, low)
        with self.lock:
            self.calls.append(kind)
            pending = self.faults.get(kind)
            if pending:
                raise pending.pop(0)
            return self._route(method, low, path, query, body, kind)

    def _route(self, method: str, low: str, path: str, query: dict[str, str], body: Any,
               kind: str) -> tuple[int, Any, dict[str, str]]:
        listing = _LISTING.match(low)
        if listing and method == "GET":
            return 200, self._marketplace_names(listing["offer"], listing["skus"]), {}
        image = _IMAGE.match(low)
        if image and method == "GET":
            versions = self.marketplace.get((image["offer"], image["sku"]))
            if not versions or (image["version"] and image["version"] not in versions):
                raise Fault(404, "NotFound", "Artifact: VMImage was not found.")
            listed = [self._marketplace_version(path.split("/versions")[0], image["sku"], v)
                      for v in versions]
            if image["version"]:
                return 200, listed[versions.index(image["version"])], {}
            return 200, listed, {}
        if method == "GET" and _COMPUTE_IMAGE.fullmatch(low) and low not in self.resources:
            if low not in self.images:
                raise Fault(404, "NotFound", "The entity was not found in this Azure location.")
            return 200, self.images[low], {}
        if method == "GET" and low.endswith("/resourcegroups"):
            return 200, {"value": self.groups()}, {}
        if method == "GET" and _PROVIDER.fullmatch(low):
            return 200, {"namespace": "Microsoft.Compute", "registrationState": "Registered",
                         "resourceTypes": [{"resourceType": t, "locations": list(self.locations)}
                                           for t in ("images", "virtualMachines")]}, {}
        if method == "GET" and _GALLERIES.fullmatch(low):
            return 200, {"value": [r for p, r in self.resources.items() if _GALLERY.fullmatch(p)]}, {}
        if method == "GET" and _GALLERY_LISTING.fullmatch(low):
            return 200, {"value": self.children(low)}, {}
        if method == "POST" and low.endswith("/share") and _GALLERY.fullmatch(low[:-len("/share")]):
            return self._share(low[:-len("/share")], body or {})
        if method == "GET" and _IMAGES.fullmatch(low):
            made = [r for p, r in self.resources.items() if _MANAGED.fullmatch(p)]
            return 200, {"value": made + [i for i in self.images.values()
                                          if i["type"] == "Microsoft.Compute/images"]}, {}
        if method == "POST" and low.endswith("/retrievebootdiagnosticsdata"):
            return 200, {"serialConsoleLogBlobUri": f"{self.url}/blobs/{low.split('/')[-2]}?sig=x"}, {}
        if method == "POST" and low.endswith("/restart"):
            self.restarts += 1
            if self.guests is not None and self.boots.vm_id(low.split("/")[-2]):
                self.guests.reboot(self.boots.vm_id(low.split("/")[-2]))
            return 202, None, self._async(kind)
        if method == "GET":
            if low not in self.resources:
                raise Fault(404, "ResourceNotFound", f"The Resource '{path}' was not found.")
            return 200, azure_net.view(self, low, self.resources[low]), {}
        if method == "PUT":
            name = path.rstrip("/").rsplit("/", 1)[-1]
            stored = {**(body or {}), "id": path, "name": name}
            stored.setdefault("properties", {})["provisioningState"] = "Succeeded"
            self._parents(kind, low, stored)
            azure_net.check_put(self, low, stored)
            backed = kind == "PUT virtualmachines" and self.boots.backs(self.guests, stored)
            headers = self._async(kind, "InProgress" if (self.stuck or backed) and "virtualmachines" in kind
                                  else "Succeeded")
            op = self.operations[headers["Azure-AsyncOperation"].rsplit("/", 1)[-1]]
            if op["status"] != "Failed":
                self._extra(kind, stored)
                azure_net.extra(self, kind, stored)
                self.resources[low] = stored
                azure_net.peering_states(self)
                azure_net.forward(self)
                if backed and self.guests is not None:
                    stored["properties"]["provisioningState"] = "Creating"
                    self.boots.start(self, self.guests, low, op)
            return 201, stored, headers
        if method == "PATCH":
            if low not in self.resources:
                raise Fault(404, "ResourceNotFound", f"The Resource '{path}' was not found.")
            stored = self.resources[low]
            for key, value in (body or {}).items():  # ARM's PATCH: tags replaced, properties merged
                if key == "properties":
                    _merge(stored.setdefault("properties", {}), value)
                else:
                    stored[key] = value
            if kind == "PATCH versions":
                self._replicate(stored)
            return 200, stored, self._async(kind)
        if method == "DELETE":
            if low not in self.resources:
                return 204, None, {}
            if "/galleries/" in low and self.children(low + "/versions") + self.children(low + "/images"):
                raise Fault(409, "CannotDeleteResource",
                            "Can not delete resource before nested resources are deleted.")
            headers = self._async(kind)
            if self.operations[headers["Azure-AsyncOperation"].rsplit("/", 1)[-1]]["status"] != "Failed":
                for key in [k for k in self.resources if k == low or k.startswith(low + "/")]:
                    self.boots.stop(self.guests, self.resources.pop(key))
                azure_net.peering_states(self)
                azure_net.forward(self)
            return 202, None, headers
        raise Fault(400, "BadRequest", f"no route for {method} {path}")

    def _parents(self, kind: str, low: str, stored: dict[str, Any]) -> None:
        """A gallery's definition needs the gallery, a version its definition and its source
        image, as Compute's do; a version is replicated to its target regions at once."""
        if "/galleries/" not in low or kind not in ("PUT images", "PUT versions"):
            return
        parent = low.rsplit("/", 2)[0]
        if parent not in self.resources and parent not in self.images:
            raise Fault(404, "ParentResourceNotFound", f"The parent resource {parent} was not found.")
        if kind == "PUT versions":
            source = str(stored["properties"].get("storageProfile", {}).get("source", {}).get("id", ""))
            if source.lower() not in self.resources and source.lower() not in self.images:
                raise Fault(404, "NotFound", f"The source image {source} was not found.")
            self._replicate(stored)

    @staticmethod
    def _replicate(stored: dict[str, Any]) -> None:
        props = stored["properties"]
        regions = [r["name"] for r in props.get("publishingProfile", {}).get("targetRegions", [])]
        props["publishingProfile"].setdefault("publishedDate", "2026-12-06T10:00:00Z")
        props["replicationStatus"] = {"aggregatedState": "Completed", "summary": [
            {"region": r, "state": "Completed", "progress": 100} for r in regions]}

    def _share(self, gallery: str, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        if gallery not in self.resources:
            raise Fault(404, "ResourceNotFound", f"The Resource '{gallery}' was not found.")
        self.shared.setdefault(gallery, []).append(body)
        profile = self.resources[gallery]["properties"].setdefault("sharingProfile", {"groups": []})
        if body.get("operationType") == "EnableCommunity":
            profile["permissions"] = "Community"
        elif body.get("operationType") == "Add":
            profile["permissions"] = "Groups"
            profile["groups"] = profile["groups"] + list(body.get("groups", []))
        else:
            raise Fault(400, "InvalidParameter", f"operationType {body.get('operationType')!r}")
        return 200, body, {}

    def _extra(self, kind: str, stored: dict[str, Any]) -> None:
        props = stored["properties"]
        if kind == "PUT publicipaddresses":
            props["ipAddress"] = self.guests.next_address() if self.guests is not None else "127.0.0.1"
        if kind == "PUT virtualmachines":
            props["vmId"] = f"4b3c0a2e-0000-4000-8000-{next(self._ids):012d}"


def _merge(into: dict[str, Any], patch: dict[str, Any]) -> None:
    """A JSON merge patch: objects merged, anything else replaced."""
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


class _Handler(BaseHTTPRequestHandler):
    fake: FakeArm

    def _serve(self) -> None:
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            status, out, headers = self.fake.handle(self.command, url.path,
                                                    {k: v[0] for k, v in parse_qs(url.query).items()},
                                                    json.loads(raw) if raw else None)
        except Fault as f:
            status, out, headers = f.status, {"error": {"code": f.code, "message": f.message}}, f.headers
        data = out.encode() if isinstance(out, str) else json.dumps(out).encode() if out is not None else b""
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Type", "text/plain" if isinstance(out, str) else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def running_arm(tls: ssl.SSLContext | None = None) -> Iterator[FakeArm]:
    """The fake on 127.0.0.1, over HTTPS when given a server context (e.g. from ``trustme``)."""
    fake = FakeArm()
    server = LoopbackHttpServer(type("Handler", (_Handler,), {"fake": fake}), "azure-fake")
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    fake.url = f"{'https' if tls else 'http'}://127.0.0.1:{server.port}"
    server.start()
    try:
        yield fake
    finally:
        server.stop()

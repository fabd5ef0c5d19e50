"""A small Compute Engine v1 over plain HTTP on 127.0.0.1, for the gce provider's tests.

It speaks the REST paths and JSON (camelCase) the real ``google-cloud-compute`` client uses, and
fails as GCE does when told to: an HTTP error with GCE's ``reason`` (``rateLimitExceeded``,
``quotaExceeded``…), an operation that ends with an error, an instance stuck in ``STAGING`` (or
staying there a fixed time, as while GCE boots it), a serial console empty for the first reads, a
delete whose operation fails once.  :attr:`FakeGce.nat_address`, :attr:`FakeGce.console_text` and
:attr:`FakeGce.on_insert` let a scripted guest stand behind the instances (see :mod:`.sshd_guest`).

With :attr:`FakeGce.guests` set, an instance of an image that maps to a local file is a real QEMU
guest (see :mod:`.gce_qemu`): PROVISIONING, then STAGING until its guest runs, then RUNNING; its
external address is the guest's loopback address, its metadata server a
:class:`GceMetadataServer`, its serial port output the QEMU console, and reset and delete act on
the guest.  With :attr:`FakeGce.vpc` set too, the instances' network lets them reach each other
where the firewall rules allow it (see :class:`.gce_qemu.GceVpc`).  Each instance gets an
internal address of its own, and its network, as a firewall rule's, is kept as a full link.

``POST /token`` answers OAuth token requests (a service account whose ``token_uri`` points here,
or an external account whose STS ``token_url`` does), refusing them with
:attr:`FakeGce.token_refusal` set; with :attr:`FakeGce.require_token` every API call needs a
bearer token (one of those, or the JWT the client signs itself with the key; the test checks
which).

For ``publish --cloud gce``: ``images.insert`` (PENDING until its global operation is polled or
it is read once, then READY) reads its ``rawDisk.source`` through :attr:`FakeGce.read_source` (the tests map
``https://storage.googleapis.com/BUCKET/OBJECT`` to a Cloud Storage emulator, see :mod:`.gcs`) and
keeps the tarball's ``disk.raw`` in :attr:`FakeGce.image_data`; ``images.delete``,
``images.patch`` (family, description, deprecation only), ``images.setLabels`` (fingerprint
checked), ``images.getIamPolicy``/``setIamPolicy`` (etag checked) and ``regions.list``; a reply
done but lost (:attr:`FakeGce.lost_replies`).
"""

from __future__ import annotations

import io
import itertools
import json
import re
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from debian_cloud_tests.datasources.httpserve import LoopbackHttpServer

from .gce_qemu import MACHINE_TYPES, GceVpc, gce_guest
from .qemu_guests import QemuGuests

PROJECT = "dct-test"
PROJECT_NUMBER = "123456789012"
ZONE = "europe-west1-b"
IMAGE_PROJECT = "debian-cloud"
REGIONS = ("europe-west1", "us-central1", "asia-east1")
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeGceHostKey"
CONSOLE = ("Booting Debian\n-----BEGIN SSH HOST KEY KEYS-----\n" + HOST_KEY +
           " root@dct\n-----END SSH HOST KEY KEYS-----\n")

ROUTES = [
    ("GET", r"/projects/(?P<project>[^/]+)/global/images/family/(?P<family>[^/]+)", "images.getFromFamily"),
    ("GET", r"/projects/(?P<project>[^/]+)/global/images/(?P<name>[^/]+)/getIamPolicy",
     "images.getIamPolicy"),
    ("POST", r"/projects/(?P<project>[^/]+)/global/images/(?P<name>[^/]+)/setIamPolicy",
     "images.setIamPolicy"),
    ("POST", r"/projects/(?P<project>[^/]+)/global/images/(?P<name>[^/]+)/setLabels", "images.setLabels"),
    ("GET", r"/projects/(?P<project>[^/]+)/global/images/(?P<name>[^/]+)", "images.get"),
    ("PATCH", r"/projects/(?P<project>[^/]+)/global/images/(?P<name>[^/]+)", "images.patch"),
    ("DELETE", r"/projects/(?P<project>[^/]+)/global/images/(?P<name>[^/]+)", "images.delete"),
    ("GET", r"/projects/(?P<project>[^/]+)/global/images", "images.list"),
    ("POST", r"/projects/(?P<project>[^/]+)/global/images", "images.insert"),
    ("GET", r"/projects/(?P<project>[^/]+)/regions", "regions.list"),
    ("GET", r"/projects/(?P<project>[^/]+)/zones/(?P<zone>[^/]+)/machineTypes/(?P<name>[^/]+)",
     "machineTypes.get"),
    ("POST", r"/projects/(?P<project>[^/]+)/global/firewalls", "firewalls.insert"),
    ("GET", r"/projects/(?P<project>[^/]+)/global/firewalls", "firewalls.list"),
    ("DELETE", r"/projects/(?P<project>[^/]+)/global/firewalls/(?P<name>[^/]+)", "firewalls.delete"),
    ("GET", r"/projects/(?P<project>[^/]+)/aggregated/instances", "instances.aggregatedList"),
    ("POST", r"/projects/(?P<project>[^/]+)/zones/(?P<zone>[^/]+)/instances", "instances.insert"),
    ("GET", r"/projects/(?P<project>[^/]+)/zones/(?P<zone>[^/]+)/instances/(?P<name>[^/]+)/serialPort",
     "instances.getSerialPortOutput"),
    ("POST", r"/projects/(?P<project>[^/]+)/zones/(?P<zone>[^/]+)/instances/(?P<name>[^/]+)/reset",
     "instances.reset"),
    ("GET", r"/projects/(?P<project>[^/]+)/zones/(?P<zone>[^/]+)/instances/(?P<name>[^/]+)", "instances.get"),
    ("DELETE", r"/projects/(?P<project>[^/]+)/zones/(?P<zone>[^/]+)/instances/(?P<name>[^/]+)",
     "instances.delete"),
    ("GET", r"/projects/(?P<project>[^/]+)/zones/(?P<zone>[^/]+)/operations/(?P<name>[^/]+)",
     "zoneOperations.get"),
    ("GET", r"/projects/(?P<project>[^/]+)/global/operations/(?P<name>[^/]+)", "globalOperations.get"),
]


class HttpFault(Exception):
    def __init__(self, status: int, reason: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message
        self.headers = headers or {}


@dataclass
class FakeGce:
    """The state of one project, and the faults to inject."""

    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    firewalls: dict[str, dict[str, Any]] = field(default_factory=dict)
    instances: dict[str, dict[str, Any]] = field(default_factory=dict)
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    faults: dict[str, list[HttpFault]] = field(default_factory=dict)
    op_errors: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    stuck: bool = False  # instances never leave STAGING
    staging_seconds: float = 0.0  # instances inserted from now on are STAGING this long
    nat_address: str = ""  # set: the external address of every instance not backed by QEMU
    console_text: str = CONSOLE  # what the serial port shows once its empty reads are over
    #: called with each instance inserted (its body as sent), under the fake's lock
    on_insert: Callable[[dict[str, Any]], None] | None = None
    empty_console_reads: int = 0
    resets: list[str] = field(default_factory=list)
    console_reads: int = 0
    url: str = ""
    guests: QemuGuests | None = None  # set: instances of local images boot for real
    vpc: GceVpc | None = None  # set: their network forwards what the firewall rules allow
    #: planted: the metadata servers name this machine type, not the one the instance runs
    metadata_machine_type: str = ""
    require_token: bool = False  # API calls without "Authorization: Bearer …" answer 401
    tokens: list[str] = field(default_factory=list)  # access tokens handed out
    #: set: the token endpoint refuses every request with this HTTP status and OAuth error
    token_refusal: tuple[int, str] | None = None
    bearers: set[str] = field(default_factory=set)  # the bearer tokens API calls carried
    #: images.insert reads its rawDisk.source through this (URL → the object's bytes; KeyError:
    #: no such object); unset, an insert takes any source without reading it
    read_source: Callable[[str], bytes] | None = None
    #: image name: the bytes of the disk.raw its insert read
    image_data: dict[str, bytes] = field(default_factory=dict)
    #: image name: its IAM policy (as setIamPolicy last set it)
    iam: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: action: how many of its next calls are done but answered 503, as a lost reply
    lost_replies: dict[str, int] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1000))
    _hosts: Iterator[int] = field(default_factory=lambda: itertools.count(2))  # of 10.132.0.0/20
    _inserting: dict[str, str] = field(default_factory=dict)  # insert operation: its image
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.add_image("debian-12-bookworm-v20260101", family="debian-12")
        self.add_image("debian-12-bookworm-arm64-v20260101", family="debian-12-arm64", arch="ARM64")

    def add_image(self, name: str, family: str = "", arch: str = "X86_64", status: str = "READY",
                  created: str = "2026-01-01T00:00:00.000-08:00", deprecated: str = "") -> None:
        self.images[name] = {"name": name, "family": family, "architecture": arch, "status": status,
                             "diskSizeGb": "10", "id": str(next(self._ids)),
                             "creationTimestamp": created,
                             **({"deprecated": {"state": deprecated}} if deprecated else {}),
                             "guestOsFeatures": [{"type": "UEFI_COMPATIBLE"}, {"type": "GVNIC"}]}

    def fail(self, action: str, status: int, reason: str, times: int = 1, message: str = "",
             retry_after: str | None = None) -> None:
        """The next *times* calls of *action* answer HTTP *status* with GCE's *reason* (and a
        ``Retry-After`` header when given)."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self.faults.setdefault(action, []).extend(
            [HttpFault(status, reason, message or f"{reason} (injected)", headers)] * times)

    def fail_operation(self, action: str, code: str, message: str = "", times: int = 1) -> None:
        """The operation started by the next *times* calls of *action* ends with error *code*."""
        self.op_errors.setdefault(action, []).extend([(code, message or f"{code} (injected)")] * times)

    def leftovers(self) -> dict[str, list[str]]:
        found = {"instances": sorted(self.instances), "firewalls": sorted(self.firewalls)}
        return {k: v for k, v in found.items() if v}

    # -- the API -------------------------------------------------------------------------------

    def service_account(self, path: Path) -> Path:
        """A service account key file (Application Default Credentials) of this project whose
        token endpoint is this fake."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        path.write_text(json.dumps({
            "type": "service_account", "project_id": PROJECT, "private_key_id": "0123abcd",
            "private_key": pem, "client_email": f"dct@{PROJECT}.iam.gserviceaccount.com",
            "client_id": "1234", "token_uri": f"{self.url}/token"}))
        return path

    def external_account(self, path: Path, subject_token: str, client_secret: str) -> Path:
        """Workload identity federation credentials (Application Default Credentials of type
        ``external_account``) whose STS token endpoint is this fake: the subject token in a file
        beside *path*, exchanged with a client id and *client_secret*.  The audience names no
        project number, so google-auth never asks Resource Manager for the project."""
        token_file = path.with_name(path.name + ".subject-token")
        token_file.write_text(subject_token)
        path.write_text(json.dumps({
            "type": "external_account",
            "audience": "//iam.googleapis.com/locations/global/workloadIdentityPools/dct/providers/fake",
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": f"{self.url}/token", "client_id": "dct-client",
            "client_secret": client_secret, "credential_source": {"file": str(token_file)}}))
        return path

    def token(self) -> tuple[int, dict[str, Any]]:
        """An OAuth access token, as Google's token endpoint grants one (or refuses it, as for
        a deleted or disabled service account key)."""
        if self.token_refusal is not None:
            status, error = self.token_refusal
            return status, {"error": error, "error_description": "Invalid JWT Signature."}
        with self.lock:
            self.tokens.append(f"ya29.fake-{next(self._ids)}")
            return 200, {"access_token": self.tokens[-1], "expires_in": 3599, "token_type": "Bearer"}

    def handle(self, method: str, path: str, query: dict[str, str], body: dict[str, Any],
               authorization: str = "") -> Any:
        if authorization.startswith("Bearer "):
            self.bearers.add(authorization.removeprefix("Bearer "))
        elif self.require_token:
            raise HttpFault(401, "required", "Request is missing required authentication credential.")
        for verb, pattern, action in ROUTES:
            m = re.fullmatch("/compute/v1" + pattern, path)
            if verb == method and m:
                with self.lock:
                    self.calls.append(action)
                    pending = self.faults.get(action)
                    if pending:
                        raise pending.pop(0)
                    out = getattr(self, "_" + action.replace(".", "_"))(query, body, **m.groupdict())
                    if self.lost_replies.get(action):
                        self.lost_replies[action] -= 1
                        raise HttpFault(503, "backendError", "the reply was lost (injected)")
                    return out
        raise HttpFault(404, "notFound", f"no route for {method} {path}")

    def _operation(self, action: str, target: str, zone: str | None,
                   error: tuple[str, str] | None = None) -> dict[str, Any]:
        name = f"operation-{next(self._ids)}"
        op: dict[str, Any] = {"name": name, "id": str(next(self._ids)), "status": "RUNNING",
                              "operationType": action.split(".")[-1], "targetLink": target, "progress": 0}
        errors = self.op_errors.get(action)
        if errors or error:
            code, message = errors.pop(0) if errors else error  # type: ignore[misc]
            op["error"] = {"errors": [{"code": code, "message": message}]}
            op["httpErrorStatusCode"] = 403 if "QUOTA" in code else 400
        if zone:
            op["zone"] = f"{self.url}/compute/v1/projects/{PROJECT}/zones/{zone}"
        self.operations[name] = op
        return dict(op)

    def _poll(self, name: str) -> dict[str, Any]:
        op = self.operations.get(name)
        if op is None:
            raise HttpFault(404, "notFound", f"operation {name} not found")
        op["status"], op["progress"] = "DONE", 100
        image = self.images.get(self._inserting.pop(name, ""))
        if image is not None and image["status"] == "PENDING":  # READY once its insert is done
            image["status"] = "READY"
        return dict(op)

    def _zoneOperations_get(self, q: Any, b: Any, project: str, zone: str, name: str) -> Any:
        return self._poll(name)

    def _globalOperations_get(self, q: Any, b: Any, project: str, name: str) -> Any:
        return self._poll(name)

    def _images_get(self, q: Any, b: Any, project: str, name: str) -> Any:
        """An image PENDING when last seen is READY by now (its insert done, polled or not)."""
        image = self._image(project, name)
        shown = dict(image)
        if image["status"] == "PENDING":
            image["status"] = "READY"
        return shown

    def _images_getFromFamily(self, q: Any, b: Any, project: str, family: str) -> Any:
        """As GCE: the family's newest image that is not deprecated."""
        found = sorted((i for i in self.images.values() if i.get("family") == family
                        and not i.get("deprecated")), key=lambda i: i["creationTimestamp"])
        if not found:
            raise HttpFault(404, "notFound", f"The resource 'projects/{project}/global/images/family/"
                            f"{family}' was not found")
        return found[-1]

    def _images_list(self, q: dict[str, str], b: Any, project: str) -> Any:
        """Two images a page, so that callers must follow nextPageToken."""
        images = list(self.images.values())
        start = int(q.get("pageToken") or 0)
        page = {"items": images[start:start + 2]}
        if start + 2 < len(images):
            page["nextPageToken"] = str(start + 2)
        return page

    def _image(self, project: str, name: str) -> dict[str, Any]:
        if name not in self.images:
            raise HttpFault(404, "notFound", f"The resource 'projects/{project}/global/images/{name}' "
                            "was not found")
        return self.images[name]

    def _images_insert(self, q: Any, body: dict[str, Any], project: str) -> Any:
        """As GCE: the image PENDING while it reads the tarball (a gzip'd tar whose only member
        is disk.raw), then READY; an unreadable source fails the operation and leaves no image."""
        name = body["name"]
        if name in self.images:
            raise HttpFault(409, "alreadyExists", f"The resource 'projects/{project}/global/images/"
                            f"{name}' already exists")
        source = body.get("rawDisk", {}).get("source", "")
        disk = b""
        if self.read_source is not None:
            try:
                disk = _disk_raw(self.read_source(source))
            except (KeyError, ValueError) as exc:
                return self._operation("images.insert", name, None,
                                       ("INVALID_IMAGE_FILE", f"{source}: {exc}"))
        op = self._operation("images.insert", name, None)
        if "error" not in op:
            self.images[name] = {
                **body, "id": str(next(self._ids)), "status": "PENDING",
                "selfLink": f"{self.url}/compute/v1/projects/{project}/global/images/{name}",
                "diskSizeGb": str(max(1, -(-len(disk) // 2**30))), "labelFingerprint": "42WmSpB8rSM=",
                "creationTimestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000-00:00")}
            self.image_data[name] = disk
            self._inserting[op["name"]] = name
        return op

    def _images_delete(self, q: Any, b: Any, project: str, name: str) -> Any:
        self._image(project, name)
        op = self._operation("images.delete", name, None)
        if "error" not in op:
            del self.images[name]
            self.image_data.pop(name, None)
            self.iam.pop(name, None)
        return op

    def _images_patch(self, q: Any, body: dict[str, Any], project: str, name: str) -> Any:
        """Only what GCE lets a patch change: family, description, deprecation."""
        image = self._image(project, name)
        changed = set(body) - {"family", "description", "deprecated", "name"}
        if changed:
            raise HttpFault(400, "invalid", f"images.patch cannot change {sorted(changed)}")
        op = self._operation("images.patch", name, None)
        if "error" not in op:
            image.update({k: v for k, v in body.items() if k != "name"})
        return op

    def _images_setLabels(self, q: Any, body: dict[str, Any], project: str, name: str) -> Any:
        image = self._image(project, name)
        if body.get("labelFingerprint") != image.get("labelFingerprint"):
            raise HttpFault(412, "conditionNotMet", "Labels fingerprint either invalid or resource "
                            "labels have changed")
        op = self._operation("images.setLabels", name, None)
        if "error" not in op:
            image["labels"] = dict(body.get("labels") or {})
            image["labelFingerprint"] = f"fp{next(self._ids)}="
        return op

    def _images_getIamPolicy(self, q: Any, b: Any, project: str, name: str) -> Any:
        self._image(project, name)
        return self.iam.get(name, {"etag": "ACAB", "version": 1})

    def _images_setIamPolicy(self, q: Any, body: dict[str, Any], project: str, name: str) -> Any:
        self._image(project, name)
        policy = dict(body.get("policy") or {})
        if policy.get("etag") != self.iam.get(name, {"etag": "ACAB"})["etag"]:
            raise HttpFault(409, "conflict", "the policy's etag does not match")
        self.iam[name] = {**policy, "etag": f"E{next(self._ids)}", "version": 1}
        return self.iam[name]

    def _regions_list(self, q: Any, b: Any, project: str) -> Any:
        return {"items": [{"name": r, "status": "UP"} for r in REGIONS]}

    def _machineTypes_get(self, q: Any, b: Any, project: str, zone: str, name: str) -> Any:
        if name not in MACHINE_TYPES:
            raise HttpFault(404, "notFound", f"The resource 'projects/{project}/zones/{zone}/machineTypes/"
                            f"{name}' was not found")
        vcpus, memory = MACHINE_TYPES[name]
        return {"name": name, "guestCpus": vcpus, "memoryMb": memory, "zone": zone}

    def _firewalls_insert(self, q: Any, body: dict[str, Any], project: str) -> Any:
        if body["name"] in self.firewalls:
            raise HttpFault(409, "alreadyExists", f"firewall {body['name']} already exists")
        self.firewalls[body["name"]] = {**body, "id": str(next(self._ids)),
                                        "network": self._network_link(project, body.get("network"))}
        op = self._operation("firewalls.insert", body["name"], None)
        self._network_changed()
        return op

    def _firewalls_list(self, q: Any, b: Any, project: str) -> Any:
        return {"items": list(self.firewalls.values())}

    def _firewalls_delete(self, q: Any, b: Any, project: str, name: str) -> Any:
        if name not in self.firewalls:
            raise HttpFault(404, "notFound", f"firewall {name} not found")
        op = self._operation("firewalls.delete", name, None)
        if "error" not in op:
            del self.firewalls[name]
            self._network_changed()
        return op

    def _network_link(self, project: str, network: str | None) -> str:
        """As GCE keeps it: the network's full link, whatever form the call gave."""
        name = (network or "default").rsplit("/", 1)[-1]
        return f"{self.url}/compute/v1/projects/{project}/global/networks/{name}"

    def _network_changed(self) -> None:
        if self.vpc is not None:
            self.vpc.update(self.instances, self.firewalls)

    def _instances_insert(self, q: Any, body: dict[str, Any], project: str, zone: str) -> Any:
        name = body["name"]
        if name in self.instances:
            raise HttpFault(409, "alreadyExists", f"instance {name} already exists")
        op = self._operation("instances.insert", name, zone)
        if "error" not in op:
            image = body["disks"][0].get("initializeParams", {}).get("sourceImage", "").rsplit("/", 1)[-1]
            backed = self.guests is not None and image in self.guests.images
            # a guest's own loopback address, its SSH forwarded from there
            nat = self.guests.next_address() if self.guests is not None and backed else \
                self.nat_address or f"127.0.0.{len(self.instances) + 2}"
            nics = body.get("networkInterfaces") or [{}]
            nics[0]["network"] = self._network_link(project, nics[0].get("network"))
            host = next(self._hosts)
            nics[0]["networkIP"] = f"10.132.{host // 256}.{host % 256}"
            nics[0]["accessConfigs"] = [{**(nics[0].get("accessConfigs") or [{}])[0], "natIP": nat}]
            self.instances[name] = {**body, "id": str(next(self._ids)), "status": "STAGING",
                                    "zone": f"{self.url}/compute/v1/projects/{project}/zones/{zone}",
                                    "networkInterfaces": nics, "console": "",
                                    "running_at": time.monotonic() + self.staging_seconds}
            if self.on_insert is not None:
                self.on_insert(body)
            if backed:
                self._boot_later(name, image)
        return op

    def _boot_later(self, name: str, image: str) -> None:
        """GCE answers an insert at once and boots in the background: the instance is
        PROVISIONING, then STAGING until its guest runs (TERMINATED, with a message, if it
        cannot start)."""
        inst = self.instances[name]
        inst.update({"status": "PROVISIONING", "booted": False})

        def boot() -> None:
            assert self.guests is not None
            with self.lock:
                inst["status"] = "STAGING"
            try:
                if self.vpc is not None:
                    self.vpc.add_address(inst["networkInterfaces"][0]["networkIP"])
                self.guests.boot(inst["id"], inst["networkInterfaces"][0]["accessConfigs"][0]["natIP"],
                                 *gce_guest(inst, self.guests.images[image], self.images[image],
                                            PROJECT, PROJECT_NUMBER, self.metadata_machine_type))
                update = {"status": "RUNNING"}
            except Exception as exc:
                update = {"status": "TERMINATED", "statusMessage": f"boot failed: {exc}"}
            with self.lock:
                inst.update({**update, "booted": True})
                self._network_changed()

        threading.Thread(target=boot, name=f"gce-boot-{name}", daemon=True).start()

    def _instances_get(self, q: Any, b: Any, project: str, zone: str, name: str) -> Any:
        inst = self.instances.get(name)
        if inst is None:
            raise HttpFault(404, "notFound", f"The resource 'projects/{project}/zones/{zone}/instances/"
                            f"{name}' was not found")
        if not self.stuck and "booted" not in inst and time.monotonic() >= inst.get("running_at", 0.0):
            inst["status"] = "RUNNING"
        return _shown(inst)

    def _instances_aggregatedList(self, q: Any, b: Any, project: str) -> Any:
        items: dict[str, Any] = {}
        for inst in self.instances.values():
            scope = "zones/" + inst["zone"].rsplit("/", 1)[-1]
            items.setdefault(scope, {"instances": []})["instances"].append(_shown(inst))
        return {"items": items}

    def _instances_delete(self, q: Any, b: Any, project: str, zone: str, name: str) -> Any:
        if name not in self.instances:
            raise HttpFault(404, "notFound", f"instance {name} not found")
        op = self._operation("instances.delete", name, zone)
        if "error" not in op:
            gone = self.instances.pop(name)
            if self.guests is not None:
                self.guests.stop(gone["id"])
            self._network_changed()
        return op

    def _instances_reset(self, q: Any, b: Any, project: str, zone: str, name: str) -> Any:
        self._instances_get(q, b, project, zone, name)
        self.resets.append(name)
        if self.guests is not None:
            self.guests.reboot(self.instances[name]["id"])
        return self._operation("instances.reset", name, zone)

    def _instances_getSerialPortOutput(self, q: Any, b: Any, project: str, zone: str, name: str) -> Any:
        self._instances_get(q, b, project, zone, name)
        self.console_reads += 1
        text = "" if self.console_reads <= self.empty_console_reads else self.console_text
        if self.guests is not None and self.instances[name]["id"] in self.guests.guests:
            text = self.guests.console(self.instances[name]["id"])
        start = int(q.get("start", "0") or 0)
        return {"contents": text[start:], "start": str(start), "next": str(len(text))}


def _disk_raw(tarball: bytes) -> bytes:
    """The disk.raw of a gzip'd tar, as GCE reads an image's source (ValueError: not one)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
            members = tar.getmembers()
            if [m.name for m in members] != ["disk.raw"]:
                raise ValueError(f"the tar holds {[m.name for m in members]}, not disk.raw alone")
            f = tar.extractfile(members[0])
            assert f is not None
            return f.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ValueError(f"not a gzip'd tar ({exc})") from None


def _shown(inst: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in inst.items() if k not in ("console", "booted", "running_at")}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeGce

    def _serve(self) -> None:
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        headers: dict[str, str] = {}
        try:
            if (self.command, url.path) == ("POST", "/token"):  # a form, not JSON
                status, out = self.fake.token()
            else:
                status, out = 200, self.fake.handle(self.command, url.path, query,
                                                    json.loads(raw) if raw else {},
                                                    self.headers.get("Authorization", ""))
        except HttpFault as f:
            status, out = f.status, {"error": {"code": f.status, "message": f.message,
                                               "errors": [{"reason": f.reason, "message": f.message,
                                                           "domain": "global"}]}}
            headers = f.headers
        data = json.dumps(out).encode()
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def running_gce() -> Iterator[FakeGce]:
    fake = FakeGce()
    server = LoopbackHttpServer(type("Handler", (_Handler,), {"fake": fake}), "gce-fake")
    fake.url = f"http://127.0.0.1:{server.port}"
    server.start()
    try:
        yield fake
    finally:
        server.stop()

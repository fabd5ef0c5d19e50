"""The GCE metadata server for one emulated instance, on 127.0.0.1.

QEMU's user network relays the guest's 169.254.169.254:80 here, and the guest finds that address
by name (``metadata.google.internal``, see :mod:`.dns`), as on GCE.  It serves
``/computeMetadata/v1/`` as GCE does: every request needs ``Metadata-Flavor: Google`` (403
without), a directory lists its entries (subdirectories end in ``/``), ``?recursive=true`` answers
a directory as JSON with camelCase keys (attribute names kept), and the guest may PUT guest
attributes (cloud-init publishes its host keys under ``hostkeys/``).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from .httpserve import LoopbackHttpServer, MetadataHandler

PREFIX = "/computeMetadata/v1"
_KEEP_NAMES = ("attributes", "guest-attributes")  # user-chosen keys, never camelCased


@dataclass
class GceInstanceData:
    """What GCE tells an instance about itself and its project."""

    instance_id: str
    name: str
    zone: str
    project: str
    project_number: str
    machine_type: str
    image: str  # projects/P/global/images/NAME
    network_ip: str
    external_ip: str
    mac: str
    attributes: dict[str, str] = field(default_factory=dict)
    project_attributes: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    guest_attributes: dict[str, dict[str, str]] = field(default_factory=dict)

    def tree(self) -> dict[str, Any]:
        """The metadata tree: dicts are directories, strings are values."""
        num = self.project_number
        gateway = re.sub(r"\.\d+$", ".1", self.network_ip)
        nic = {"ip": self.network_ip, "mac": self.mac, "mtu": "1460", "gateway": gateway,
               "network": f"projects/{num}/networks/default", "subnetmask": "255.255.240.0",
               "dns-servers": "169.254.169.254",
               "access-configs": {"0": {"external-ip": self.external_ip, "type": "ONE-TO-ONE-NAT"}}}
        instance = {
            "id": self.instance_id, "name": self.name, "description": "",
            "hostname": f"{self.name}.{self.zone}.c.{self.project}.internal",
            "zone": f"projects/{num}/zones/{self.zone}",
            "machine-type": f"projects/{num}/machineTypes/{self.machine_type}",
            "image": self.image, "cpu-platform": "Intel Broadwell", "tags": json.dumps(self.tags),
            "attributes": dict(self.attributes), "network-interfaces": {"0": nic},
            "scheduling": {"automatic-restart": "TRUE", "on-host-maintenance": "MIGRATE",
                           "preemptible": "FALSE"},
            "guest-attributes": {ns: dict(keys) for ns, keys in self.guest_attributes.items()},
        }
        project = {"project-id": self.project, "numeric-project-id": num,
                   "attributes": dict(self.project_attributes)}
        return {"instance": instance, "project": project}


def _camel(name: str) -> str:
    head, *rest = name.split("-")
    return head + "".join(part.capitalize() for part in rest)


def as_json(node: Any, keep: bool = False) -> Any:
    """A directory as ``?recursive=true`` answers it: camelCase keys, numbered entries a list."""
    if not isinstance(node, dict):
        return node
    if node and all(k.isdigit() for k in node):
        return [as_json(node[k]) for k in sorted(node, key=int)]
    return {(k if keep else _camel(k)): as_json(v, keep or k in _KEEP_NAMES) for k, v in node.items()}


class _Handler(MetadataHandler):
    server: GceMetadataServer
    extra_headers = (("Metadata-Flavor", "Google"), ("Server", "Metadata Server for VM"))
    content_type = "application/text"

    def _parts(self) -> list[str] | None:
        """The path below /computeMetadata/v1, or None (answered already) when it is refused."""
        if self.headers.get("Metadata-Flavor") != "Google":
            self._send(403, "Missing required header: Metadata-Flavor")
            return None
        path = urlparse(self.path).path
        if not path.startswith(PREFIX):
            self._send(404, "Not Found")
            return None
        return [p for p in path[len(PREFIX):].split("/") if p]

    def do_GET(self) -> None:
        parts = self._parts()
        if parts is None:
            return
        query = {k.lower(): v[0].lower() for k, v in parse_qs(urlparse(self.path).query).items()}
        node: Any = self.server.data.tree()
        for part in parts:
            if not isinstance(node, dict) or part not in node:
                return self._send(404, "Not Found")
            node = node[part]
        if query.get("recursive") == "true" or query.get("alt") == "json":
            keep = any(p in _KEEP_NAMES for p in parts)
            return self._send(200, json.dumps(as_json(node, keep)), "application/json")
        if isinstance(node, dict):
            return self._send(200, "".join(k + ("/" if isinstance(v, dict) else "") + "\n"
                                           for k, v in node.items()))
        return self._send(200, node)

    def do_PUT(self) -> None:
        parts = self._parts()
        if parts is None:
            return
        length = int(self.headers.get("Content-Length") or 0)
        value = self.rfile.read(length).decode(errors="replace") if length else ""
        if len(parts) != 4 or parts[:2] != ["instance", "guest-attributes"]:
            return self._send(403, "Only guest attributes can be written")
        with self.server.lock:
            self.server.data.guest_attributes.setdefault(parts[2], {})[parts[3]] = value
        return self._send(200)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.server.record(f"{self.command} {self.path} {code}")

    def log_message(self, format: str, *args: Any) -> None:
        pass


class GceMetadataServer(LoopbackHttpServer):
    """Serves one instance's metadata on 127.0.0.1 (port chosen by the kernel)."""

    def __init__(self, data: GceInstanceData, unix_path: Path | None = None) -> None:
        super().__init__(_Handler, "gce-metadata", unix_path)
        self.data = data
        self.lock = threading.Lock()

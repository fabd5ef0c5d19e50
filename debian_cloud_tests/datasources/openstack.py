"""Nova's metadata service for one emulated server, on 127.0.0.1.

What cloud-init's OpenStack datasource reads, as Nova serves it: the version list at
``/openstack``, then ``meta_data.json``, ``user_data`` (404 when none was given),
``vendor_data.json``, ``vendor_data2.json`` and ``network_data.json`` of a version, and Nova's
EC2-compatible tree at ``/latest/meta-data`` (crawled too; without it the datasource warns).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .ec2 import ImdsServer, InstanceData, _Handler

#: the versions a Nova of the last years lists (cloud-init picks the newest it knows)
VERSIONS = ("2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30", "2016-10-06",
            "2017-02-22", "2018-08-27", "2020-10-14", "latest")


@dataclass
class NovaServerData:
    """What Nova tells a server about itself."""

    uuid: str
    name: str
    hostname: str
    availability_zone: str
    project_id: str
    mac: str
    network_id: str
    meta: dict[str, str] = field(default_factory=dict)
    public_keys: dict[str, str] = field(default_factory=dict)  # key name -> OpenSSH public key
    user_data: bytes | None = None

    def meta_data(self) -> dict[str, Any]:
        return {"uuid": self.uuid, "name": self.name, "hostname": f"{self.hostname}.novalocal",
                "availability_zone": self.availability_zone, "project_id": self.project_id,
                "launch_index": 0, "meta": self.meta, "devices": [], "dedicated_cpus": [],
                "public_keys": self.public_keys,
                "keys": [{"name": n, "type": "ssh", "data": k} for n, k in self.public_keys.items()]}

    def network_data(self) -> dict[str, Any]:
        """One port on a DHCP network, as Neutron describes a port without a static config."""
        link = f"tap{self.uuid[:11]}"
        return {"links": [{"id": link, "vif_id": self.uuid, "type": "ovs", "mtu": 1500,
                           "ethernet_mac_address": self.mac}],
                "networks": [{"id": "network0", "type": "ipv4_dhcp", "link": link,
                              "network_id": self.network_id}],
                "services": []}


class _NovaHandler(_Handler):
    server: NovaMetadataServer

    def do_PUT(self) -> None:  # Nova has no IMDSv2 tokens
        self._send(405)

    def do_GET(self) -> None:
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        if parts[:1] != ["openstack"]:
            return super().do_GET()
        nova = self.server.nova
        if len(parts) == 1:
            return self._send(200, "\n".join(VERSIONS))
        if len(parts) != 3 or parts[1] not in VERSIONS:
            return self._send(404)
        documents = {"meta_data.json": nova.meta_data(), "vendor_data.json": {},
                     "vendor_data2.json": {}, "network_data.json": nova.network_data()}
        if parts[2] == "user_data":
            return self._send(200, nova.user_data) if nova.user_data else self._send(404)
        if parts[2] in documents:
            return self._send(200, json.dumps(documents[parts[2]]), "application/json")
        return self._send(404)


class NovaMetadataServer(ImdsServer):
    """Serves one server's Nova metadata and its EC2-compatible tree (no tokens, as Nova)."""

    def __init__(self, nova: NovaServerData, ec2: InstanceData, unix_path: Path | None = None) -> None:
        super().__init__(ec2, unix_path)
        self.RequestHandlerClass = _NovaHandler
        self.nova = nova

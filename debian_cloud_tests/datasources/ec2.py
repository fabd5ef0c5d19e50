"""An EC2 instance metadata service (IMDSv2) on 127.0.0.1, for one emulated instance.

QEMU's user network forwards the guest's 169.254.169.254:80 here (``guestfwd``), so cloud-init's
Ec2 datasource crawls it exactly as on EC2: a PUT for a session token, then GETs carrying it.
When the instance was launched with ``HttpTokens=required``, a GET without a valid token gets
401, as on EC2: a provider that forgets IMDSv2 is caught by the guest failing to configure.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .httpserve import LoopbackHttpServer, MetadataHandler

TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"


@dataclass
class InstanceData:
    """What EC2 knows about the instance, as the metadata service tells it."""

    instance_id: str
    image_id: str
    instance_type: str
    region: str
    zone: str
    private_ip: str
    private_dns: str
    public_ip: str
    mac: str
    subnet_id: str
    vpc_id: str
    security_groups: dict[str, str]  # id -> name
    account_id: str
    reservation_id: str
    architecture: str
    tokens_required: bool
    user_data: bytes | None = None
    public_keys: dict[str, str] = field(default_factory=dict)  # key name -> OpenSSH public key

    def tree(self) -> dict[str, Any]:
        """The meta-data tree: dicts are directories, strings are leaves."""
        nic = {
            "device-number": "0", "interface-id": f"eni-{self.instance_id[2:]}", "mac": self.mac,
            "local-hostname": self.private_dns, "local-ipv4s": self.private_ip,
            "public-ipv4s": self.public_ip, "owner-id": self.account_id,
            "security-group-ids": "\n".join(self.security_groups),
            "security-groups": "\n".join(self.security_groups.values()),
            "subnet-id": self.subnet_id, "vpc-id": self.vpc_id,
        }
        return {
            "ami-id": self.image_id, "ami-launch-index": "0", "hostname": self.private_dns,
            "instance-action": "none", "instance-id": self.instance_id,
            "instance-life-cycle": "on-demand", "instance-type": self.instance_type,
            "local-hostname": self.private_dns, "local-ipv4": self.private_ip, "mac": self.mac,
            "public-hostname": f"ec2-{self.public_ip.replace('.', '-')}.compute.amazonaws.com",
            "public-ipv4": self.public_ip, "reservation-id": self.reservation_id,
            "security-groups": "\n".join(self.security_groups.values()),
            "placement": {"availability-zone": self.zone, "region": self.region},
            "services": {"domain": "amazonaws.com", "partition": "aws"},
            "block-device-mapping": {"ami": "/dev/xvda", "root": "/dev/xvda"},
            "network": {"interfaces": {"macs": {self.mac: nic}}},
        }

    def identity(self) -> str:
        return json.dumps({
            "accountId": self.account_id, "architecture": self.architecture,
            "availabilityZone": self.zone, "imageId": self.image_id, "instanceId": self.instance_id,
            "instanceType": self.instance_type, "privateIp": self.private_ip, "region": self.region,
            "version": "2017-09-30",
        })


class _Handler(MetadataHandler):
    server: ImdsServer

    def log_message(self, format: str, *args: Any) -> None:
        self.server.record(f"{self.command} {self.path} {args[1] if len(args) > 1 else ''}")

    def do_PUT(self) -> None:
        if self.path.rstrip("/").split("/")[-2:] != ["api", "token"]:
            return self._send(404)
        if not self.headers.get(TOKEN_TTL_HEADER):
            return self._send(400)
        token = secrets.token_urlsafe(24)
        self.server.tokens.add(token)
        return self._send(200, token)

    def do_GET(self) -> None:
        data = self.server.data
        if data.tokens_required and self.headers.get(TOKEN_HEADER) not in self.server.tokens:
            return self._send(401)
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        if not parts:
            return self._send(200, "latest\n2021-03-23\n2016-09-02\n2009-04-04")
        rest = parts[1:]  # the API version is ignored: every version gets the same answers
        if rest == ["user-data"]:
            return self._send(200, data.user_data) if data.user_data else self._send(404)
        if rest[:1] == ["meta-data"]:
            return self._tree(self._meta_data(), rest[1:])
        if rest[:2] == ["dynamic", "instance-identity"]:
            return self._tree({"document": data.identity()}, rest[2:])
        if not rest:
            return self._send(200, "dynamic\nmeta-data\nuser-data")
        return self._send(404)

    def _meta_data(self) -> dict[str, Any]:
        tree = self.server.data.tree()
        keys = self.server.data.public_keys
        if keys:
            tree["public-keys"] = {f"{i}={name}": {"openssh-key": key}
                                   for i, (name, key) in enumerate(keys.items())}
        return tree

    def _tree(self, node: Any, path: list[str]) -> None:
        for part in path:
            if isinstance(node, dict) and part.isdigit():
                node = next((v for k, v in node.items() if k.split("=")[0] == part), None)
            elif isinstance(node, dict):
                node = node.get(part)
            else:
                node = None
            if node is None:
                return self._send(404)
        if isinstance(node, dict):
            return self._send(200, "\n".join(k + "/" if isinstance(v, dict) and "=" not in k else k
                                             for k, v in node.items()))
        return self._send(200, node)


class ImdsServer(LoopbackHttpServer):
    """Serves one instance's metadata on 127.0.0.1 (port chosen by the kernel)."""

    def __init__(self, data: InstanceData, unix_path: Path | None = None) -> None:
        super().__init__(_Handler, "imds", unix_path)
        self.data = data
        self.tokens: set[str] = set()

"""Azure's two in-guest endpoints for one emulated VM, on 127.0.0.1 (the guest reaches both
through QEMU guestfwd relays; the ``Host`` header tells them apart):

- IMDS (169.254.169.254): ``/metadata/instance`` (and ``/network``) with ``Metadata: true``,
  the compute and network document of api-version 2021-08-01 and its ``extended`` part;
- the wireserver (168.63.129.16): the goal state, and the health report with which the guest
  says it is provisioned.  Azure's VM creation finishes only on that report: :attr:`ready` is set.

Every request is recorded, so a test can tell what the guest asked and reported.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from .httpserve import LoopbackHttpServer, MetadataHandler

IMDS_HOST, WIRESERVER_HOST = "169.254.169.254", "168.63.129.16"
API_VERSIONS = ("2019-06-01", "2020-09-01", "2021-03-01", "2021-08-01", "2021-12-13")
GOAL_STATE = """<?xml version="1.0" encoding="utf-8"?>
<GoalState xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xsi:noNamespaceSchemaLocation="goalstate10.xsd">
  <Version>2012-11-30</Version>
  <Incarnation>{incarnation}</Incarnation>
  <Machine>
    <ExpectedState>Started</ExpectedState>
    <StopRolesDeadlineHint>300000</StopRolesDeadlineHint>
    <ExpectHealthReport>FALSE</ExpectHealthReport>
  </Machine>
  <Container>
    <ContainerId>{container_id}</ContainerId>
    <RoleInstanceList>
      <RoleInstance>
        <InstanceId>{instance_id}</InstanceId>
        <State>Started</State>
        <Configuration>
          <ConfigName>{instance_id}.1.{instance_id}.1.xml</ConfigName>
        </Configuration>
      </RoleInstance>
    </RoleInstanceList>
  </Container>
</GoalState>
"""
VERSIONS = """<?xml version="1.0" encoding="utf-8"?>
<Versions><Preferred><Version>2015-04-05</Version></Preferred>
<Supported><Version>2015-04-05</Version><Version>2012-11-30</Version></Supported></Versions>
"""


@dataclass
class AzureVmData:
    """What IMDS tells a VM about itself (from its ARM resource and where it runs)."""

    vm_id: str
    name: str
    location: str
    vm_size: str
    resource_group: str
    subscription: str
    admin_username: str
    computer_name: str
    public_keys: list[dict[str, str]]  # {"path", "keyData"}
    image: dict[str, str]  # imageReference
    mac: str  # aa:bb:cc:dd:ee:ff
    private_ip: str
    subnet: tuple[str, str]  # address, prefix
    public_ip: str
    tags: dict[str, str] = field(default_factory=dict)

    def compute(self) -> dict[str, Any]:
        return {
            "azEnvironment": "AzurePublicCloud", "location": self.location, "name": self.name,
            "offer": self.image.get("offer", ""), "publisher": self.image.get("publisher", ""),
            "sku": self.image.get("sku", ""), "version": self.image.get("version", ""),
            "osType": "Linux", "osProfile": {"adminUsername": self.admin_username,
                                             "computerName": self.computer_name,
                                             "disablePasswordAuthentication": "true"},
            "platformFaultDomain": "0", "platformUpdateDomain": "0", "provider": "Microsoft.Compute",
            "publicKeys": self.public_keys, "resourceGroupName": self.resource_group,
            "resourceId": f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
                          f"/providers/Microsoft.Compute/virtualMachines/{self.name}",
            "securityProfile": {"secureBootEnabled": "false", "virtualTpmEnabled": "false"},
            "subscriptionId": self.subscription, "tags": ";".join(f"{k}:{v}" for k, v in self.tags.items()),
            "tagsList": [{"name": k, "value": v} for k, v in self.tags.items()],
            "userData": "", "vmId": self.vm_id, "vmScaleSetName": "", "vmSize": self.vm_size,
            "zone": ""}

    def network(self) -> dict[str, Any]:
        return {"interface": [{
            "ipv4": {"ipAddress": [{"privateIpAddress": self.private_ip, "publicIpAddress": self.public_ip}],
                     "subnet": [{"address": self.subnet[0], "prefix": self.subnet[1]}]},
            "ipv6": {"ipAddress": []},
            "macAddress": self.mac.replace(":", "").upper()}]}

    def instance(self, extended: bool) -> dict[str, Any]:
        doc = {"compute": self.compute(), "network": self.network()}
        return {**doc, "extended": {"compute": {"ppsType": "None"}}} if extended else doc


class _Handler(MetadataHandler):
    server: AzureMetadataServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        host = (self.headers.get("Host") or "").split(":")[0]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode(errors="replace") if length else ""
        self.server.record(f"{host} {self.command} {self.path}")
        if host == WIRESERVER_HOST:
            return self._wireserver(body)
        return self._imds()

    do_GET = do_POST = do_PUT = _serve

    def _imds(self) -> None:
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if self.headers.get("Metadata", "").lower() != "true":
            return self._send(400, json.dumps({"error": "Bad request. Required metadata header not "
                                                        "specified"}), "application/json")
        if query.get("api-version") not in API_VERSIONS:
            return self._send(400, json.dumps({"error": "Bad request. api-version is invalid"}),
                              "application/json")
        vm = self.server.vm
        documents = {"/metadata/instance": vm.instance(query.get("extended") == "true"),
                     "/metadata/instance/compute": vm.compute(),
                     "/metadata/instance/network": vm.network()}
        document = documents.get(url.path.rstrip("/"))
        if document is None:
            return self._send(404, json.dumps({"error": "Not found"}), "application/json")
        return self._send(200, json.dumps(document), "application/json")

    def _wireserver(self, body: str) -> None:
        url = urlparse(self.path)
        comp = parse_qs(url.query).get("comp", [""])[0]
        if self.command == "GET" and comp == "versions":
            return self._send(200, VERSIONS, "text/xml")
        if self.command == "GET" and comp == "goalstate":
            return self._send(200, self.server.goal_state(), "text/xml")
        if self.command == "POST" and comp == "health":
            return self._send(200 if self.server.report_health(body) else 400)
        if self.command == "POST" and comp == "telemetrydata":
            return self._send(200)
        return self._send(404)


class AzureMetadataServer(LoopbackHttpServer):
    """IMDS and the wireserver of one VM (port chosen by the kernel)."""

    def __init__(self, vm: AzureVmData, unix_path: Path | None = None) -> None:
        super().__init__(_Handler, "azure-metadata", unix_path)
        self.vm = vm
        self.container_id = str(uuid.uuid4())
        self.incarnation = 1
        self.health: list[str] = []  # the states the guest reported
        self.ready = threading.Event()
        self.on_stop: list[Any] = []  # callables run at stop (e.g. removing the media)

    @property
    def role_instance(self) -> str:
        return f"{self.vm.vm_id}.{self.vm.name}"

    def goal_state(self) -> str:
        return GOAL_STATE.format(incarnation=self.incarnation, container_id=self.container_id,
                                 instance_id=self.role_instance)

    def report_health(self, document: str) -> bool:
        """Accept a health report of this goal state; ``Ready`` marks the VM provisioned."""
        try:
            root = ET.fromstring(document)
        except ET.ParseError:
            return False
        text = {re.sub(r"^\{.*\}", "", el.tag): (el.text or "").strip() for el in root.iter()}
        if text.get("ContainerId") != self.container_id or text.get("InstanceId") != self.role_instance:
            return False
        state = text.get("State", "")
        self.health.append(state)
        self.record(f"health {state}")  # emulation.HEALTH: what the qemu machine reads back
        if state == "Ready":
            self.ready.set()
        return True

    def stop(self) -> None:
        super().stop()
        for action in self.on_stop:
            action()

"""The process that answers one guest's metadata requests (and, for a cloud reached by name, its
DNS queries), started beside the guest's QEMU and ending with it.

Usage: python -m debian_cloud_tests.datasources.serve CONFIG [--upstream=RESOLVER]

CONFIG is the run directory's datasource.json (:mod:`.emulation`); every request is appended to
its log, which the run reads (an Azure guest's health reports).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from .azure import AzureMetadataServer, AzureVmData
from .dns import DnsServer
from .ec2 import ImdsServer, InstanceData
from .emulation import from_fields
from .gce import GceInstanceData, GceMetadataServer
from .httpserve import LoopbackHttpServer
from .openstack import NovaMetadataServer, NovaServerData
from .platforms import Datasource

_PR_SET_PDEATHSIG = 1


def server(config: dict[str, Any], socket_path: Path) -> LoopbackHttpServer:
    data = config["data"]
    kind = Datasource(config["datasource"])
    if kind is Datasource.EC2:
        return ImdsServer(from_fields(InstanceData, data), socket_path)
    if kind is Datasource.GCE:
        return GceMetadataServer(from_fields(GceInstanceData, data), socket_path)
    if kind is Datasource.AZURE:
        return AzureMetadataServer(from_fields(AzureVmData, data), socket_path)
    if kind is Datasource.OPENSTACK:
        return NovaMetadataServer(from_fields(NovaServerData, data["nova"]),
                                  from_fields(InstanceData, data["ec2"]), socket_path)
    raise ValueError(f"nothing to serve for {kind}")


def main(argv: list[str]) -> int:
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:  # the machine is gone already
        return 0
    config_path = Path(argv[0])
    upstream = next((a.split("=", 1)[1] for a in argv[1:] if a.startswith("--upstream=")), None)
    config = json.loads(config_path.read_text())
    # named relative to the run dir, as the relays name it: a socket path holds 108 bytes at most
    os.chdir(config_path.parent)
    http = server(config, Path(config["socket"]))
    if config.get("dns"):
        DnsServer(config["dns"], upstream=upstream).start()

    def stop(*_: object) -> None:
        http.server_close()
        if http.unix_path is not None:
            http.unix_path.unlink(missing_ok=True)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    with Path(config["log"]).open("a") as log:
        http.log = log
        http.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

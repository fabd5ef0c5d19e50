"""OpenStack's config drive: what Nova writes for a server when the metadata service is not to be
used (``--config-drive``), a volume labelled ``config-2`` holding the same documents the metadata
service serves under ``openstack/<version>/``.  cloud-init's ConfigDrive datasource finds it by
its label."""

from __future__ import annotations

import json
from pathlib import Path

from debian_cloud_tests.isofs import write_iso

from .openstack import NovaServerData

LABEL = "config-2"
VERSIONS = ("2012-08-10", "latest")


def write_config_drive(path: Path, server: NovaServerData) -> Path:
    files: dict[str, bytes | str] = {}
    for version in VERSIONS:
        base = f"openstack/{version}"
        files[f"{base}/meta_data.json"] = json.dumps(server.meta_data())
        files[f"{base}/network_data.json"] = json.dumps(server.network_data())
        files[f"{base}/vendor_data.json"] = "{}"
        if server.user_data:
            files[f"{base}/user_data"] = server.user_data
    return write_iso(path, LABEL, files)

"""A pytest plugin planting a defect in the emulated EC2: its metadata service serves the
instance another hostname than the platform set (``-p tests.fakes.served_hostname``), as a
metadata service answering for another instance would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from debian_cloud_tests.datasources import emulation
from debian_cloud_tests.datasources.platforms import Datasource

SERVED = "ip-192-0-2-99.eu-central-1.compute.internal"


def pytest_configure(config: Any) -> None:
    honest = emulation.EMULATORS[Datasource.EC2]

    def planted(guest: emulation.Guest, run_dir: Path) -> emulation.Emulation:
        made = honest(guest, run_dir)
        assert made.server_config is not None
        served = json.loads(made.server_config.read_text())
        served["data"]["private_dns"] = SERVED
        made.server_config.write_text(json.dumps(served))
        return made

    emulation.EMULATORS[Datasource.EC2] = planted

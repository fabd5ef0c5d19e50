"""Fixtures putting the AWS provider in front of the moto emulator, in-process (loaded by the
test modules as a plugin: ``pytest_plugins = ["tests.fakes.aws_env"]``).

``moto_server`` is one server per test module; ``aws`` a fresh, hooked EC2 for each test, whose
instances have scripted consoles.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .aws_world import AwsWorld, make_world
from .moto_ec2 import CheckIp, MotoEc2, ScriptedMachines, running_moto


@pytest.fixture(scope="module")
def moto_server() -> Iterator[MotoEc2]:
    with running_moto() as moto:
        yield moto


@pytest.fixture
def aws(moto_server: MotoEc2, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[AwsWorld]:
    checkip = CheckIp()
    try:
        yield make_world(moto_server, monkeypatch, tmp_path, ScriptedMachines(), checkip)
    finally:
        checkip.shutdown()
        checkip.server_close()

"""One test's EC2: the moto server reset and hooked, the SDK environment pointing at it with
dummy credentials, an AMI registered, and the provider's backoff sleeps recorded, not slept."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from debian_cloud_tests.providers.aws import retry

from .moto_ec2 import REGION, CheckIp, Hooks, Machines, MotoEc2


@dataclass
class AwsWorld:
    moto: MotoEc2
    hooks: Hooks
    machines: Any
    ami: str
    ec2: Any
    env: dict[str, str]
    sleeps: list[float] = field(default_factory=list)
    region: str = REGION


def apply_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """Set the SDK environment; empty values are removed (an empty AWS_PROFILE is not 'none')."""
    for key, value in env.items():
        if value:
            monkeypatch.setenv(key, value)
        else:
            monkeypatch.delenv(key, raising=False)


def make_world(moto: MotoEc2, monkeypatch: pytest.MonkeyPatch, tmp: Path, machines: Machines,
               checkip: CheckIp) -> AwsWorld:
    moto.reset()
    env = {**moto.env(tmp), "DCT_AWS_CHECKIP_URL": checkip.url, "DCT_AWS_SOURCE_ADDRESS": ""}
    apply_env(monkeypatch, env)
    hooks = Hooks(monkeypatch, machines)
    world = AwsWorld(moto, hooks, machines, moto.register_ami(), moto.client(), env)
    monkeypatch.setattr(retry, "sleep", world.sleeps.append)
    return world

"""The AWS provider when the cloud says no: throttling and capacity are retried with backoff,
quotas and refused credentials fail at once in one clear line, and a launch that fails half-way
removes what it had created."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from debian_cloud_tests.providers.aws import AwsProvider, resources, retry
from debian_cloud_tests.providers.aws.errors import (
    CapacityError,
    CredentialsError,
    QuotaError,
    ThrottledError,
)

from debian_cloud_tests.errors import ProviderError, UsageError
from debian_cloud_tests.spec import Arch, LaunchSpec

from .conftest import run_suites, stopped_mid_launch
from .fakes.moto_ec2 import leftovers

if TYPE_CHECKING:
    from .fakes.aws_world import AwsWorld

pytest_plugins = ["tests.fakes.aws_env"]


def make_spec(world: AwsWorld) -> LaunchSpec:
    return LaunchSpec(image=world.ami, arch=Arch.AMD64, run_id="20260101120000-def456",
                      boot_timeout=60, options={"region": world.region})


def launch(world: AwsWorld, tmp_path: Path):  # type: ignore[no-untyped-def]
    provider = AwsProvider()
    spec = provider.validate(make_spec(world))
    (tmp_path / "run").mkdir(exist_ok=True)
    return provider.launch(spec, tmp_path / "run")


def assert_backoff(sleeps: list[float], base: float, cap: float) -> None:
    """Delay n lies in [d/2, d], d = min(cap, base·2^(n-1)): exponential, jittered, bounded."""
    for n, slept in enumerate(sleeps, start=1):
        ceiling = min(cap, base * 2 ** (n - 1))
        assert ceiling / 2 <= slept <= ceiling, (n, slept, sleeps)


@pytest.mark.parametrize("code", ["RequestLimitExceeded", "Throttling"])
def test_throttling_is_retried_with_exponential_backoff(aws: AwsWorld, tmp_path: Path,
                                                        code: str) -> None:
    aws.hooks.fail("run_instances", code, times=3)
    machine = launch(aws, tmp_path)
    assert aws.hooks.calls.count("run_instances") == 4
    assert len(aws.sleeps) == 3
    assert_backoff(aws.sleeps, retry.API.base, retry.API.cap)
    assert machine.destroy() == [] and leftovers(aws.moto) == {}


def test_endless_throttling_is_a_provider_error(aws: AwsWorld) -> None:
    aws.hooks.fail("describe_images", "RequestLimitExceeded", times=50)
    with pytest.raises(ThrottledError, match="still throttled") as info:
        AwsProvider().validate(make_spec(aws))
    assert isinstance(info.value, ProviderError) and info.value.provider_problem
    assert aws.hooks.calls.count("describe_images") == retry.API.attempts
    assert_backoff(aws.sleeps, retry.API.base, retry.API.cap)


def test_capacity_comes_back(aws: AwsWorld, tmp_path: Path) -> None:
    aws.hooks.fail("run_instances", "InsufficientInstanceCapacity", times=2)
    machine = launch(aws, tmp_path)
    assert_backoff(aws.sleeps, retry.CAPACITY_WAIT.base, retry.CAPACITY_WAIT.cap)
    assert len(aws.sleeps) == 2 and min(aws.sleeps) >= retry.CAPACITY_WAIT.base / 2
    assert machine.destroy() == [] and leftovers(aws.moto) == {}


def test_no_capacity_at_all_is_clear_and_leaves_nothing(aws: AwsWorld, tmp_path: Path) -> None:
    aws.hooks.fail("run_instances", "InsufficientInstanceCapacity", times=50,
                   message="We currently do not have sufficient t3.small capacity")
    with pytest.raises(CapacityError) as info:
        launch(aws, tmp_path)
    message = str(info.value)
    assert message.startswith("aws: run_instances: no capacity (InsufficientInstanceCapacity")
    assert "--instance-type" in message and "\n" not in message
    assert aws.hooks.calls.count("run_instances") == retry.CAPACITY_WAIT.attempts
    assert leftovers(aws.moto) == {}, "the key pair and security group must go with the launch"


def test_instance_limit_fails_at_once(aws: AwsWorld, tmp_path: Path) -> None:
    aws.hooks.fail("run_instances", "InstanceLimitExceeded",
                   message="You have requested more instances (21) than your current limit")
    with pytest.raises(QuotaError, match=r"account limit is reached .InstanceLimitExceeded"):
        launch(aws, tmp_path)
    assert aws.sleeps == [] and aws.hooks.calls.count("run_instances") == 1
    assert leftovers(aws.moto) == {}


def test_instance_that_dies_at_launch_is_reported_and_removed(aws: AwsWorld, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def dies(backend, instance) -> None:  # type: ignore[no-untyped-def]
        instance.terminate()
        from moto.ec2.models.instances import StateReason

        instance.state_reason = StateReason("Server.InternalError: Internal error on launch",
                                            "Server.InternalError")
    monkeypatch.setattr(aws.machines, "start", dies)
    with pytest.raises(ProviderError, match=r"is terminated: Server\.InternalError"):
        launch(aws, tmp_path)
    assert leftovers(aws.moto) == {}


def test_instance_stuck_pending_times_out_and_leaves_nothing(aws: AwsWorld, tmp_path: Path) -> None:
    """moto starts every instance running: the hook keeps this one pending, as a stuck launch."""
    from dataclasses import replace

    aws.hooks.hold_pending()
    provider = AwsProvider()
    spec = replace(provider.validate(make_spec(aws)), boot_timeout=1)
    (tmp_path / "run").mkdir()
    with pytest.raises(ProviderError, match=r"^aws: instance i-[0-9a-f]+ still pending after 1s "
                       r"\(waiting for running\)$") as info:
        provider.launch(spec, tmp_path / "run")
    assert info.value.detail == "" and "\n" not in str(info.value), "one line, nothing left to report"
    (instance,) = [i for r in aws.ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    assert instance["State"]["Name"] == "terminated"
    assert leftovers(aws.moto) == {}, "the key pair and security group go with the instance"
    assert "terminate_instances" in aws.hooks.calls and "delete_key_pair" in aws.hooks.calls


def test_a_launch_waiting_in_a_thread_stops_with_the_run_and_leaves_nothing(
        aws: AwsWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stop ends the wait for "running"; the termination's own wait still runs to the end."""
    from dataclasses import replace

    aws.hooks.hold_pending()
    provider = AwsProvider()
    spec = replace(provider.validate(make_spec(aws)), boot_timeout=600)
    (tmp_path / "run").mkdir()
    outcome = stopped_mid_launch(monkeypatch, lambda: provider.launch(spec, tmp_path / "run"),
                                 lambda: "run_instances" in aws.hooks.calls)
    assert isinstance(outcome, KeyboardInterrupt), outcome
    assert leftovers(aws.moto) == {}


def test_interrupted_launch_removes_what_it_created(aws: AwsWorld, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    real, calls = resources.wait_state, []

    def interrupted(*args: object, **kwargs: object) -> object:
        calls.append(args)
        if len(calls) == 1:  # Ctrl-C while waiting for the instance to run
            raise KeyboardInterrupt
        return real(*args, **kwargs)  # type: ignore[arg-type]
    monkeypatch.setattr(resources, "wait_state", interrupted)
    with pytest.raises(KeyboardInterrupt):
        launch(aws, tmp_path)
    assert leftovers(aws.moto) == {}


def test_launch_interrupted_while_run_instances_is_in_flight_leaves_nothing(
        aws: AwsWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from debian_cloud_tests.providers.aws import provider as aws_provider

    real = aws_provider._run_instance

    def reply_lost(*args: object, **kwargs: object) -> str:
        real(*args, **kwargs)  # type: ignore[arg-type]  # EC2 starts it; Ctrl-C before the reply
        raise KeyboardInterrupt
    monkeypatch.setattr(aws_provider, "_run_instance", reply_lost)
    with pytest.raises(KeyboardInterrupt):
        launch(aws, tmp_path)
    assert leftovers(aws.moto) == {}


def test_launch_interrupted_while_create_security_group_is_in_flight_leaves_nothing(
        aws: AwsWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by fault injection: SIGTERM while EC2 created the group, before its reply came; the
    run never learnt the group's id, and gc leaves an unexpired group until it expires."""
    real = resources.create_group

    def reply_lost(*args: object, **kwargs: object) -> str:
        real(*args, **kwargs)  # type: ignore[arg-type]  # EC2 creates it; SIGTERM before the reply
        raise KeyboardInterrupt
    monkeypatch.setattr(resources, "create_group", reply_lost)
    with pytest.raises(KeyboardInterrupt):
        launch(aws, tmp_path)
    assert leftovers(aws.moto) == {}


def test_group_still_in_use_is_waited_out(aws: AwsWorld, tmp_path: Path) -> None:
    machine = launch(aws, tmp_path)
    aws.hooks.fail("delete_security_group", "DependencyViolation", times=3)
    assert machine.destroy() == []
    assert len(aws.sleeps) == 3 and leftovers(aws.moto) == {}


def test_destroy_collects_every_failure_and_never_raises(aws: AwsWorld, tmp_path: Path) -> None:
    machine = launch(aws, tmp_path)
    aws.hooks.fail("terminate_instances", "UnauthorizedOperation")
    aws.hooks.fail("delete_security_group", "DependencyViolation", times=50)
    aws.hooks.fail("delete_key_pair", "UnauthorizedOperation")
    errors = machine.destroy()
    text = " | ".join(str(e) for e in errors)
    assert len(errors) == 3, text
    assert machine.facts.instance_id in text and "security group" in text and "key pair" in text
    aws.hooks.faults.clear()
    assert machine.destroy() == [], "a second destroy finishes the job"
    assert leftovers(aws.moto) == {}


def test_missing_credentials_name_what_to_set(aws: AwsWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(CredentialsError, match="aws: no credentials found; set AWS_ACCESS_KEY_ID"):
        AwsProvider().validate(make_spec(aws))


def test_unknown_profile_is_a_credentials_error(aws: AwsWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "nobody")
    with pytest.raises(CredentialsError, match=r"aws: .*nobody"):
        AwsProvider().validate(make_spec(aws))


def test_no_region_anywhere(aws: AwsWorld) -> None:
    spec = make_spec(aws)
    spec.options.pop("region")
    with pytest.raises(UsageError, match="aws: no region: give --region"):
        AwsProvider().validate(spec)


@pytest.mark.parametrize("case", ["refused", "missing"])
def test_credential_trouble_through_the_plugin_is_one_line(aws: AwsWorld, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          case: str) -> None:
    if case == "refused":
        aws.hooks.fail("describe_images", "AuthFailure",
                       message="AWS was not able to validate the provided access credentials")
    else:
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    run = run_suites(tmp_path, "--provider=aws", f"--image={aws.ami}", f"--region={aws.region}",
                     timeout=120)
    output = run.stdout + run.stderr
    assert run.rc == CredentialsError.exit_code, run.explain()
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("debian-cloud-tests: error: aws: "), run.explain()
    assert "AWS_ACCESS_KEY_ID" in lines[0]
    assert "Traceback" not in output and aws.env["AWS_SECRET_ACCESS_KEY"] not in output
    assert leftovers(aws.moto) == {}

"""End to end on QEMU: two guests of the good image measure their throughput over a network of
their own (the network_perf suite alone) and meet a floor the user's table sets; the same link
rate-limited by the platform fails, naming the figure, the floor and the instance type."""

from __future__ import annotations

from pathlib import Path

import pytest

from debian_cloud_tests import guesttools, throughput
from debian_cloud_tests.plugin import suites_dir

from .conftest import TEST_SHAPE, run_suites

pytestmark = pytest.mark.e2e

CHECK = "network_perf.throughput_above_floor"
#: Mbit/s: a quarter of the least two 1-vCPU guests reached under TCG on 2 cores busy with other
#: guests (38 to 225 Mbit/s), five times the negative control's 2 Mbit/s link
FLOOR = 10


def _table(tmp_path: Path) -> Path:
    """The user's table: a floor for the tests' QEMU shape, which the shipped table lacks."""
    path = tmp_path / "instance-types.toml"
    path.write_text(f'[qemu."{TEST_SHAPE}"]\nthroughput_floor_mbps = {FLOOR}\n')
    return path


def _run(tmp_path: Path, image: Path, *extra: str, env: dict[str, str] | None = None):
    # the run is walled in a namespace without a way out: its iperf3 comes from the cache
    guesttools.tree("bookworm", "amd64")
    return run_suites(tmp_path, *extra, "--provider=qemu", f"--image={image}",
                      f"--instance-types={_table(tmp_path)}", f"--instance-type={TEST_SHAPE}",
                      select=str(suites_dir() / "network_perf"), env=env)


# CI runs the negative control below, which goes through the same link, iperf3 and property;
# this false-alarm control runs in the full matrix (two guests' boots each: CI's budget)
@pytest.mark.matrix
@pytest.mark.cost(150)
def test_two_guests_meet_the_floor_and_record_the_figure(good_image: Path, tmp_path: Path) -> None:
    run = _run(tmp_path, good_image)
    assert run.rc == 0, run.explain()
    assert run.checks.get(CHECK) == "passed", run.digest()
    assert float(run.props[throughput.PROPERTY]) >= FLOOR, run.props


@pytest.mark.cost(180)
def test_a_rate_limited_link_fails_naming_the_figure(good_image: Path, tmp_path: Path) -> None:
    run = _run(tmp_path, good_image, "-p", "tests.fakes.peer_rate",
               env={"PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert run.rc == 1, run.explain()
    assert run.failing() == {CHECK}, run.digest()
    said = run.messages[CHECK]
    assert f"below the floor of {FLOOR} Mbit/s" in said and TEST_SHAPE in said, said
    assert float(run.props[throughput.PROPERTY]) < 2.5, run.props
    # the platform's rate limiter ended with the run
    relays = [p for p in Path("/proc").glob("[0-9]*/cmdline")
              if _reads(p).count(b"peerrelay") and _reads(p).count(run.props["run_id"].encode())]
    assert not relays, relays


def _reads(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # the process ended meanwhile
        return b""

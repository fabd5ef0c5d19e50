"""A killed vagrant run's guard: the provider's launch against stand-ins for ``virsh`` and
``vagrant`` (no libvirtd, no guest), then the run dir reaped as its guard reaps it after a
SIGKILL: that run's `vagrant up`, domain and volumes go, another run's and others' stay."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from debian_cloud_tests.providers.vagrant import VagrantProvider, box, tools
from debian_cloud_tests.providers.vagrant.gc import collect_run
from debian_cloud_tests.providers.vagrant.machine import STOP_TIMEOUT
from debian_cloud_tests.providers.vagrant.provider import VagrantSettings

from debian_cloud_tests import rundir
from debian_cloud_tests.errors import UsageError
from debian_cloud_tests.spec import Accel, Arch, LaunchSpec

from .fakes.libvirt_cli import STATE_ENV, Libvirt, install

RUN_ID = "20260101120000-abc123"
OTHER_RUN = "20260101120000-def456"
BOX = "debian/bookworm64"


@dataclass
class Launched:
    run_dir: Path
    machine: Any


@pytest.fixture
def libvirt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Libvirt]:
    db = install(tmp_path / "bin", tmp_path / "libvirt.json")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv(STATE_ENV, str(db.path))
    monkeypatch.setenv("VAGRANT_HOME", str(tmp_path / "vagrant.d"))
    launched: list[Any] = []
    db.launched = launched  # type: ignore[attr-defined]
    yield db
    for machine in launched:  # a test that failed half-way leaves no `vagrant up` running
        machine._stop_up()


def launch(db: Libvirt, tmp_path: Path, run_id: str) -> Launched:
    run_dir = tmp_path / f"{rundir.PREFIX}{run_id}-x"
    run_dir.mkdir()
    # the settings validate would make: this fake libvirt has no `vagrant` for validate to ask
    spec = LaunchSpec(image=BOX, arch=Arch.host(), run_id=run_id, accel=Accel.TCG,
                      instance_type="1x512", settings=VagrantSettings(
                          source=box.resolve(BOX), vcpus=1, memory_mib=512, disk_gib=None))
    machine = VagrantProvider().launch(spec, run_dir)
    db.launched.append(machine)  # type: ignore[attr-defined]
    return Launched(run_dir, machine)


def wait_for_domain(db: Libvirt, run_id: str) -> None:
    deadline = time.monotonic() + 30
    while not [d for d in db.inventory()["domains"] if d.startswith(f"dct-{run_id}-")]:
        assert time.monotonic() < deadline, "`vagrant up` defined no domain"
        time.sleep(0.05)


def test_a_killed_runs_guard_removes_that_run_and_nothing_else(libvirt: Libvirt, tmp_path: Path) -> None:
    """The killed run's `vagrant up` is still booting its guest: the guard stops it (its command
    line does not name the run dir, its working directory does), then removes its domain, the
    domain's disk and the seed volume."""
    killed = launch(libvirt, tmp_path, RUN_ID)
    other = launch(libvirt, tmp_path, OTHER_RUN)
    wait_for_domain(libvirt, RUN_ID)
    wait_for_domain(libvirt, OTHER_RUN)
    libvirt.define("web", "/srv/web/Vagrantfile")
    libvirt.add_volume("someones-box_vagrant_box_image_0_1_box.img")
    up = killed.machine._up

    assert rundir.reap(killed.run_dir)

    assert not killed.run_dir.exists()
    assert up.wait(timeout=10) is not None
    left = libvirt.inventory()
    assert not [n for kind in left.values() for n in kind if RUN_ID in n], left
    assert [d for d in left["domains"] if OTHER_RUN in d] and [v for v in left["volumes"] if OTHER_RUN in v]
    assert "web" in left["domains"] and "someones-box_vagrant_box_image_0_1_box.img" in left["volumes"]
    assert other.machine._up.poll() is None, "the other run's `vagrant up` runs on"
    assert collect_run(RUN_ID, str(killed.run_dir)) == [], "a second collect finds nothing"

    removed = collect_run(OTHER_RUN, str(other.run_dir))
    assert removed and other.machine._up.wait(timeout=10) is not None
    left = libvirt.inventory()
    assert left == {"domains": ["web"], "volumes": sorted(["web.img",
                                                           "someones-box_vagrant_box_image_0_1_box.img"])}


def test_the_record_is_written_before_the_first_create(libvirt: Libvirt, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = tmp_path / f"{rundir.PREFIX}{RUN_ID}-x"
    seen: list[tuple[str, dict[str, str] | None]] = []
    virsh = tools.virsh

    def watch(*args: str, check: bool = True) -> Any:
        record = run_dir / rundir.CLOUD_FILE
        seen.append((args[0], json.loads(record.read_text()) if record.exists() else None))
        return virsh(*args, check=check)

    monkeypatch.setattr(tools, "virsh", watch)
    launched = launch(libvirt, tmp_path, RUN_ID)
    assert "vol-create-as" in [verb for verb, _ in seen], seen
    expected = {"provider": "vagrant", "project": str(run_dir), "run_id": RUN_ID}
    assert [record for _, record in seen] == [expected] * len(seen)
    wait_for_domain(libvirt, RUN_ID)
    assert launched.machine.destroy() == [] and libvirt.inventory() == {"domains": [], "volumes": []}


def test_a_stop_during_the_seed_upload_leaves_no_volume(libvirt: Libvirt, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C or SIGTERM while the seed ISO is being uploaded: the volume created for it goes."""
    virsh = tools.virsh

    def stopped_in_upload(*args: str, check: bool = True) -> Any:
        if args[0] == "vol-upload":
            raise KeyboardInterrupt("signal 15")
        return virsh(*args, check=check)

    monkeypatch.setattr(tools, "virsh", stopped_in_upload)
    with pytest.raises(KeyboardInterrupt):
        launch(libvirt, tmp_path, RUN_ID)
    assert any("vol-create-as" in line for line in libvirt.log())
    assert libvirt.inventory() == {"domains": [], "volumes": []}


@pytest.mark.parametrize(("run_id", "project"), [
    ("*", None), ("", None), ("20260101120000-*", None), ("20260101120000-abc12?", None),
    ("20260101120000-abc123\n", None), (RUN_ID, "/"), (RUN_ID, f"/tmp/{rundir.PREFIX}{OTHER_RUN}-x"),
    (RUN_ID, f"{rundir.PREFIX}{RUN_ID}-x")])
def test_a_bad_run_id_is_refused_without_a_command(libvirt: Libvirt, run_id: str,
                                                   project: str | None) -> None:
    with pytest.raises(UsageError, match="nothing was removed"):
        collect_run(run_id, project)
    assert libvirt.log() == []


def test_vagrant_up_stops_on_ctrl_c_where_the_runner_ignores_it(libvirt: Libvirt, tmp_path: Path) -> None:
    """A runner started in the background ignores SIGINT, and its children inherit that: `vagrant
    up` must still stop at the SIGINT the provider sends, not wait out the stop timeout."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        launched = launch(libvirt, tmp_path, RUN_ID)
    finally:
        signal.signal(signal.SIGINT, previous)
    wait_for_domain(libvirt, RUN_ID)
    started = time.monotonic()
    assert launched.machine.destroy() == []
    assert time.monotonic() - started < STOP_TIMEOUT / 4

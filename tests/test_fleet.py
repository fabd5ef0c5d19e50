"""Launching machines together.  With a real provider (ssh) against a real sshd: N launches wait
in parallel, a spare launched ahead is handed to the test that needs it, and close() leaves
nothing.  With the cloud providers (aws against moto, gce against its fake, through their real
SDKs) whose instances stay pending a fixed time and whose guest is one real sshd: N launches take
about one, one launch failing leaves the others destroyed by close() and nothing in the cloud,
and a fleet closed while its launches are in flight (Ctrl-C) destroys what they hand back."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
from debian_cloud_tests.providers.ssh import gc as ssh_gc

from debian_cloud_tests import gc, lifecycle, rundir, sshkeys
from debian_cloud_tests.errors import CleanupError, DCTError, ProviderError
from debian_cloud_tests.lifecycle import Fleet
from debian_cloud_tests.machine import Machine
from debian_cloud_tests.provider import Provider, get_provider
from debian_cloud_tests.spec import Arch, KeepInstance, LaunchSpec

from .fakes.sshd import Sshd, unavailable
from .fakes.sshd_guest import SshdGuest, running_sshd_guest

pytest_plugins = ["tests.fakes.aws_env"]

DELAY = 2.0  # seconds each connection waits before sshd sees it: a slow boot, in small


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


@contextmanager
def slow_front(port: int) -> Iterator[int]:
    """A port on 127.0.0.1 that passes each connection to *port* only after DELAY seconds."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return

            def forward(conn: socket.socket = conn) -> None:
                time.sleep(DELAY)
                upstream = socket.create_connection(("127.0.0.1", port))
                threading.Thread(target=_pipe, args=(upstream, conn), daemon=True).start()
                _pipe(conn, upstream)

            threading.Thread(target=forward, daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()


def fleet_for(server: Sshd, port: int) -> Fleet:
    provider = get_provider("ssh")
    spec = provider.validate(LaunchSpec(
        image="debian-12-genericcloud-amd64", arch=Arch.AMD64, run_id="fleet", ssh_user="root",
        boot_timeout=30,
        options={"host": f"root@127.0.0.1:{port}", "ssh_key": str(server.client_key),
                 "host_key": server.host_key}))
    return Fleet(provider, spec, KeepInstance.NEVER)


def test_launch_many_waits_in_parallel(sshd: Sshd) -> None:
    with slow_front(sshd.port) as port:
        fleet = fleet_for(sshd, port)
        try:
            begin = time.monotonic()
            instances = fleet.launch_many(3)
            wall = time.monotonic() - begin
            assert len(instances) == 3
            assert [inst.host.run("echo ok").stdout.strip() for inst in instances] == ["ok"] * 3
            assert len({id(inst.ready.client) for inst in instances}) == 3  # a connection each
        finally:
            fleet.close(failed=False)
    # one after the other would take 3 x DELAY at least
    assert wall < 2 * DELAY, f"3 launches took {wall:.1f}s: the waits did not overlap"
    assert not fleet.instances and not fleet.pending_machines()


def test_spare_boots_with_the_first_and_is_taken_once(sshd: Sshd) -> None:
    with slow_front(sshd.port) as port:
        fleet = fleet_for(sshd, port)
        try:
            begin = time.monotonic()
            first = fleet.launch_with_spares(1)
            spare = fleet.take_spare()
            wall = time.monotonic() - begin
            assert spare is not None and spare is not first
            assert spare.host.run("echo ok").stdout.strip() == "ok"
            assert fleet.take_spare() is None
            assert len(fleet.instances) == 2
        finally:
            fleet.close(failed=False)
    assert wall < 2 * DELAY, f"the spare's wait did not overlap the first's ({wall:.1f}s)"
    assert not fleet.instances and not fleet.spares


def test_a_spare_given_back_serves_the_next_test(sshd: Sshd) -> None:
    """The throughput check's peer, given back, is the uniqueness suite's twin; the machines
    launched for a peer network are launched with spec.peer_network."""
    with slow_front(sshd.port) as port:
        fleet = fleet_for(sshd, port)
        try:
            first = fleet.launch_with_spares(1, peer_network=True)
            spare = fleet.take_spare()
            assert spare is not None and fleet.take_spare() is None
            fleet.give_back(spare)
            assert fleet.take_spare() is spare
            assert len(fleet.instances) == 2 and first is not spare
        finally:
            fleet.close(failed=False)
        fleet.give_back(spare)  # after close: nothing to give back to
        assert not fleet.spares


# -- cloud providers: launches that block until the instance runs ---------------------------------

PENDING = 2.0  # seconds a cloud instance is pending (STAGING on GCE) after its create call
COUNT = 3


@dataclass
class CloudFleet:
    """A cloud provider in front of its fake, whose instances all are one real sshd."""

    name: str
    provider: Provider
    spec: LaunchSpec
    leftovers: Callable[[], dict[str, list[str]]]
    #: the next create call fails at once (one launch out of several)
    fail_one_launch: Callable[[], None]
    #: how many create calls the fake has answered so far
    creates: Callable[[], int]

    def fleet(self) -> Fleet:
        return Fleet(self.provider, self.provider.validate(self.spec), KeepInstance.NEVER)


def _short_sleep(seconds: float) -> None:
    """The providers' backoff, capped: a poll every 0.2 s instead of 1, 2, 4… s."""
    time.sleep(min(seconds, 0.2))


def _aws(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, guest: SshdGuest,
         tmp_path: Path) -> Iterator[CloudFleet]:
    from debian_cloud_tests.providers.aws import AwsProvider, instance, retry

    from .fakes.aws_world import make_world
    from .fakes.moto_ec2 import CheckIp, leftovers
    from .fakes.sshd_guest import SshdMachines

    checkip = CheckIp()
    try:
        world = make_world(request.getfixturevalue("moto_server"), monkeypatch, tmp_path,
                           SshdMachines(guest), checkip)
        world.hooks.pending_seconds = PENDING
        monkeypatch.setattr(retry, "sleep", _short_sleep)
        monkeypatch.setattr(instance, "POLL_INTERVAL", 0.2)
        spec = LaunchSpec(image=world.ami, arch=Arch.AMD64, run_id="fleet-aws", ssh_user="root",
                          boot_timeout=30, options={"region": world.region})
        yield CloudFleet(
            "aws", AwsProvider(), spec, lambda: leftovers(world.moto),
            lambda: world.hooks.fail("run_instances", "InvalidParameterValue",
                                     message="injected: this one launch fails"),
            lambda: world.hooks.calls.count("run_instances"))
    finally:
        checkip.shutdown()
        checkip.server_close()


def _gce(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, guest: SshdGuest,
         tmp_path: Path) -> Iterator[CloudFleet]:
    from debian_cloud_tests.providers.gce import GceProvider, instance, retry
    from google.auth.credentials import AnonymousCredentials

    from .fakes.gce_compute import PROJECT, ZONE, running_gce

    monkeypatch.setenv("DCT_SOURCE_ADDRESS", "127.0.0.1")
    monkeypatch.setattr(retry, "sleep", _short_sleep)
    monkeypatch.setattr(instance, "POLL_INTERVAL", 0.2)
    with running_gce() as fake:
        fake.staging_seconds = PENDING
        fake.nat_address = guest.address
        fake.console_text = "Booting Debian\n" + guest.console()
        fake.on_insert = guest.gce_insert
        spec = LaunchSpec(image="projects/debian-cloud/global/images/family/debian-12",
                          arch=Arch.AMD64, run_id="fleet-gce", ssh_user="root", boot_timeout=30,
                          options={"zone": ZONE})
        provider = GceProvider(project=PROJECT, credentials=AnonymousCredentials(), endpoint=fake.url)
        yield CloudFleet("gce", provider, spec, fake.leftovers,
                         lambda: fake.fail("instances.insert", 403, "quotaExceeded",
                                           message="injected: this one launch fails"),
                         lambda: fake.calls.count("instances.insert"))


CLOUD_FLEETS = {"aws": _aws, "gce": _gce}


@pytest.fixture
def run_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the fleet's run dirs are made (checked empty at the end)."""
    where = tmp_path / "tmp"
    where.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    return where


@pytest.fixture(params=sorted(CLOUD_FLEETS))
def cloud(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
          run_dirs: Path) -> Iterator[CloudFleet]:
    why = unavailable()
    if why:
        pytest.skip(why)
    with running_sshd_guest(tmp_path / "guest") as guest:
        yield from CLOUD_FLEETS[request.param](request, monkeypatch, guest, tmp_path)


def _timed_launch(cloud: CloudFleet, count: int) -> float:
    fleet = cloud.fleet()
    try:
        begin = time.monotonic()
        instances = fleet.launch_many(count)
        wall = time.monotonic() - begin
        assert [inst.host.run("echo ok").stdout.strip() for inst in instances] == ["ok"] * count
        assert len({inst.machine.facts.instance_id for inst in instances}) == count
    finally:
        fleet.close(failed=False)
    assert cloud.leftovers() == {}
    return wall


def test_cloud_launches_overlap(cloud: CloudFleet, run_dirs: Path) -> None:
    assert cloud.provider.concurrent_launches
    single = _timed_launch(cloud, 1)
    assert single >= PENDING
    together = _timed_launch(cloud, COUNT)
    # one after the other would take COUNT x single at least
    assert together < 2 * single, f"{COUNT} {cloud.name} launches took {together:.1f}s, " \
        f"one {single:.1f}s: the launches did not overlap"
    assert not list(run_dirs.iterdir())


def test_one_launch_failing_leaves_the_others_to_close(cloud: CloudFleet, run_dirs: Path) -> None:
    fleet = cloud.fleet()
    cloud.fail_one_launch()
    try:
        with pytest.raises(DCTError, match="injected: this one launch fails"):
            fleet.launch_many(COUNT)
        assert len(fleet.instances) == COUNT - 1  # the others came up, registered for close()
        assert cloud.leftovers() != {}
    finally:
        fleet.close(failed=True)
    assert cloud.leftovers() == {}, "close() left something in the cloud"
    assert not fleet.instances and not fleet.pending_machines()
    assert not list(run_dirs.iterdir())


def test_closed_while_launching_destroys_what_lands(cloud: CloudFleet, run_dirs: Path) -> None:
    """Ctrl-C while the launches are in flight: the plugin closes the fleet at once; each launch
    destroys its machine the moment the provider hands it back, and close() waits for that."""
    fleet = cloud.fleet()
    outcome: list[BaseException | object] = []

    def launch() -> None:
        try:
            outcome.append(fleet.launch_many(2))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=launch, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while cloud.creates() < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cloud.creates() == 2 and cloud.leftovers() != {}  # both instances exist, pending
    fleet.close(failed=True)
    assert cloud.leftovers() == {}, "a launch in flight at close() left its machine"
    thread.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], DCTError)
    assert "while this machine was launching" in str(outcome[0])
    assert not list(run_dirs.iterdir())


class _InterruptOnce:
    """The time module as lifecycle sees it, whose first monotonic() raises KeyboardInterrupt:
    a signal landing right after a launch registered itself, before its provider call."""

    def __init__(self) -> None:
        self.armed = True

    def monotonic(self) -> float:
        if self.armed:
            self.armed = False
            raise KeyboardInterrupt("signal 15")
        return time.monotonic()

    def __getattr__(self, name: str) -> object:
        return getattr(time, name)


def test_launch_cut_short_by_an_interrupt_is_not_waited_for(cloud: CloudFleet, run_dirs: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A launch interrupted before it could record that it ended will never land: close() from
    that thread returns at once (it used to wait the boot timeout and more) and removes the
    launch's run dir."""
    fleet = cloud.fleet()
    monkeypatch.setattr(lifecycle, "time", _InterruptOnce())
    with pytest.raises(KeyboardInterrupt):
        fleet.launch()
    started = time.monotonic()
    fleet.close(failed=True)
    assert time.monotonic() - started < 5, "close() waited for a launch that could never land"
    assert cloud.leftovers() == {}
    assert not list(run_dirs.iterdir())


# -- what close() leaves: a kept machine's verified keys, a failed destroy's record ----------------

class _SpecRecordingSsh:
    """The ssh provider, keeping the specs it is asked to launch."""

    def __init__(self) -> None:
        self.inner = get_provider("ssh")
        self.launched: list[LaunchSpec] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def launch(self, spec: LaunchSpec, run_dir: Path) -> Machine:
        self.launched.append(spec)
        return self.inner.launch(spec, run_dir)


@pytest.mark.parametrize(("keep", "outlives"), [(KeepInstance.NEVER, False),
                                                (KeepInstance.ON_FAILURE, True),
                                                (KeepInstance.ALWAYS, True)])
def test_a_machine_that_may_be_kept_is_launched_to_outlive_the_run(
        sshd: Sshd, run_dirs: Path, keep: KeepInstance, outlives: bool) -> None:
    """A machine --keep-instance may keep must not die with this process (QEMU would, with the
    thread that started it): the provider is told so in the spec it launches."""
    provider = _SpecRecordingSsh()
    fleet = Fleet(provider, fleet_for(sshd, sshd.port).spec, keep)  # type: ignore[arg-type]
    fleet.launch()
    fleet.close(failed=False)
    assert [spec.may_outlive_run for spec in provider.launched] == [outlives]


def test_a_kept_machine_is_reached_with_the_verified_host_key(sshd: Sshd, run_dirs: Path) -> None:
    """--keep-instance: the reconnect line checks the host key strictly against a known_hosts
    file in the run dir holding the key the run verified, never trusting the first answer."""
    provider = get_provider("ssh")
    spec = fleet_for(sshd, sshd.port).spec
    fleet = Fleet(provider, spec, KeepInstance.ALWAYS)
    inst = fleet.launch()
    fleet.close(failed=False)
    known = inst.run_dir.path / "known_hosts"
    try:
        (line,) = fleet.kept
        assert "accept-new" not in line
        assert (f"-p {sshd.port} -o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes "
                f"root@127.0.0.1") in line
        key = " ".join(sshd.host_key.split()[:2])
        assert known.read_text() == f"[127.0.0.1]:{sshd.port} {key}\n"
        found = subprocess.run(["ssh-keygen", "-F", f"[127.0.0.1]:{sshd.port}", "-f", str(known)],
                               capture_output=True, text=True, check=False)
        assert found.returncode == 0 and key in found.stdout, found.stdout + found.stderr
        assert (inst.run_dir.path / rundir.KEPT_FILE).is_file()
    finally:
        shutil.rmtree(inst.run_dir.path)


def test_known_hosts_names_port_22_as_ssh_does() -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake"
    assert sshkeys.known_hosts_line("192.0.2.10", 22, key + " comment") == f"192.0.2.10 {key}"
    assert sshkeys.known_hosts_line("::1", 2222, key) == f"[::1]:2222 {key}"


class _UndestroyableSsh:
    """The ssh provider, recording a cloud resource in the run dir as aws does, whose machines'
    destroy fails (the cloud refused the delete)."""

    def __init__(self, run_id: str) -> None:
        self.inner = get_provider("ssh")
        self.run_id = run_id

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def launch(self, spec: LaunchSpec, run_dir: Path) -> Machine:
        rundir.record_cloud(run_dir, "ssh", run_id=self.run_id)
        machine = self.inner.launch(spec, run_dir)
        machine.destroy = lambda: [ProviderError("ssh: injected: the delete was refused")]  # type: ignore[method-assign]
        return machine


def test_a_failed_destroy_leaves_the_record_for_gc_to_retry(
        sshd: Sshd, run_dirs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """close() used to remove the run dir whatever destroy said, and with it the record of what
    to remove.  Now the guard retries at once, and when that fails too the run dir and its record
    stay until gc removes what they name."""
    run_id = "20260101000000-abcdef"
    fleet = Fleet(_UndestroyableSsh(run_id), fleet_for(sshd, sshd.port).spec,  # type: ignore[arg-type]
                  KeepInstance.NEVER)
    inst = fleet.launch()
    with pytest.raises(CleanupError, match="the delete was refused"):
        fleet.close(failed=False)
    guard = inst.run_dir._guard
    assert guard is not None and guard.wait(timeout=10) == 0  # it retried (ssh has no collect_run)
    assert json.loads((inst.run_dir.path / rundir.CLOUD_FILE).read_text())["run_id"] == run_id
    retried: list[dict[str, object]] = []
    monkeypatch.setattr(ssh_gc, "collect_run", lambda **where: retried.append(where) or [],
                        raising=False)
    os.utime(inst.run_dir.path, (time.time() - 3600, time.time() - 3600))
    assert gc.collect_local(run_dirs) == [str(inst.run_dir.path)]
    assert retried == [{"run_id": run_id}] and not list(run_dirs.iterdir())

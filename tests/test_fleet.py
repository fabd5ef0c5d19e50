"""Launching machines together, with a real provider (ssh) against a real sshd: N launches wait in
parallel, a spare launched ahead is handed to the test that needs it, and close() leaves nothing."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from debian_cloud_tests.lifecycle import Fleet
from debian_cloud_tests.provider import get_provider
from debian_cloud_tests.spec import Arch, KeepInstance, LaunchSpec

from .fakes.sshd import Sshd

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

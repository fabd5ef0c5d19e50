"""A network only two guests share, for a check between them (throughput): a NIC hot-plugged
into each, joined by QEMU's datagram netdev over unix sockets in their run dirs.  Nothing of it
touches a network of this host: each frame goes from one QEMU process to the other (or through
the rate-limiting relay the tests put between them, :mod:`.peerrelay`), and the link exists only
while the check holds it.

A machine that may be linked gets an empty PCIe root port at launch (``--`` a q35 or virt root
bus takes no hot-plugged device); the NIC is plugged into it when the link is made and unplugged
when it is closed, so the other checks never see it.
"""

from __future__ import annotations

import random
import subprocess
import sys
from itertools import count
from pathlib import Path
from typing import TYPE_CHECKING

from debian_cloud_tests.errors import ProviderError
from debian_cloud_tests.machine import LinkEnd, PeerLink

from .qmp import QMPError

if TYPE_CHECKING:
    from .machine import QemuMachine

PORT = "dct-peer-port"
#: the link's addresses, from 198.18.0.0/15, the range set aside for benchmarking (RFC 2544): no
#: guest network uses it, and its frames never leave the two machines
ADDRESSES = ("198.18.0.1", "198.18.0.2")
PREFIX = 30
#: the root port a linkable machine is launched with (chassis and slot: QEMU's defaults clash
#: with nothing, the q35 and virt machines having no other root port)
PORT_ARGS = ("-device", f"pcie-root-port,id={PORT},bus=pcie.0,chassis=1")
SOCKET = "peer.sock"
RELAY_DIR = "peer-relay"
#: sun_path holds 108 bytes with its NUL
MAX_SOCKET_PATH = 107
_ids = count(1)


def _mac() -> str:
    """A locally administered unicast address."""
    return "52:54:00:" + ":".join(f"{random.randrange(256):02x}" for _ in range(3))


def _socket(path: Path) -> str:
    if len(str(path)) > MAX_SOCKET_PATH:
        raise ProviderError(f"qemu: the peer link's socket path {path} is longer than a unix "
                            f"socket takes ({MAX_SOCKET_PATH} bytes): set TMPDIR to a shorter path")
    path.unlink(missing_ok=True)
    return str(path)


class QemuPeerLink(PeerLink):
    """The NICs, netdevs and relay of one link; :meth:`close` removes them all."""

    def __init__(self, a: QemuMachine, b: QemuMachine, rate: float | None) -> None:
        serial = next(_ids)
        super().__init__((LinkEnd(ADDRESSES[0], _mac(), PREFIX), LinkEnd(ADDRESSES[1], _mac(), PREFIX)))
        self._plugged: list[tuple[QemuMachine, str, str]] = []
        self._relay: subprocess.Popen[str] | None = None
        self._machines = (a, b)
        netdev, nic = f"dct-peer{serial}", f"dct-peer-nic{serial}"
        try:
            sock_a, sock_b = _socket(a.run_dir / SOCKET), _socket(b.run_dir / SOCKET)
            to_a, to_b = sock_b, sock_a  # straight from one QEMU to the other
            if rate is not None:
                to_a, to_b = self._start_relay(a.run_dir / RELAY_DIR, rate, sock_a, sock_b)
            for machine, local, remote, end in ((a, sock_a, to_a, self.ends[0]),
                                                (b, sock_b, to_b, self.ends[1])):
                assert end.mac is not None
                self._plug(machine, netdev, nic, local, remote, end.mac)
        except BaseException:
            self.close()
            raise

    def _start_relay(self, where: Path, rate: float, sock_a: str, sock_b: str) -> tuple[str, str]:
        """Start the shaper between the two sockets; the addresses each guest sends to."""
        where.mkdir(exist_ok=True)
        relay_a, relay_b = _socket(where / "a.sock"), _socket(where / "b.sock")
        with (where / "relay.log").open("w") as log:
            self._relay = subprocess.Popen(
                [sys.executable, "-m", "debian_cloud_tests.providers.qemu.peerrelay", str(where),
                 str(rate), sock_a, sock_b], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=log, text=True)
        self._machines[0].register_pid(self._relay.pid)
        assert self._relay.stdout is not None
        if self._relay.stdout.readline().strip() != "ready":
            said = (where / "relay.log").read_text(errors="replace").strip().splitlines()
            raise ProviderError(f"qemu: the peer link's rate limiter did not start: "
                                f"{said[-1] if said else 'no output'}")
        return relay_a, relay_b

    def _plug(self, machine: QemuMachine, netdev: str, nic: str, local: str, remote: str,
              mac: str) -> None:
        try:
            machine.qmp.command("netdev_add", type="dgram", id=netdev,
                                local={"type": "unix", "path": local},
                                remote={"type": "unix", "path": remote})
            self._plugged.append((machine, netdev, ""))
            machine.qmp.command("device_add", driver="virtio-net-pci", id=nic, netdev=netdev,
                                mac=mac, bus=PORT)
            self._plugged[-1] = (machine, netdev, nic)
        except QMPError as exc:
            raise ProviderError(f"qemu: could not plug the peer link's NIC into "
                                f"{machine.facts.instance_id}: {exc}") from None

    def close(self) -> list[BaseException]:
        """Unplug both NICs and remove their netdevs (QEMU lets a netdev go while the guest
        still lets go of its NIC: nothing is waited for), stop the relay."""
        errors: list[BaseException] = []
        plugged, self._plugged = self._plugged, []
        for machine, netdev, nic in plugged:
            if not machine.is_alive():
                continue
            for command, name in (("device_del", nic), ("netdev_del", netdev)):
                if not name:
                    continue
                try:
                    machine.qmp.command(command, id=name)
                except QMPError as exc:
                    errors.append(exc)
        if self._relay is not None:
            self._relay.terminate()
            try:
                self._relay.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._relay.kill()
                self._relay.wait(timeout=5)
            if self._relay.stdout is not None:
                self._relay.stdout.close()
            self._relay = None
        return errors

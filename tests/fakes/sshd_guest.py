"""One real sshd standing in for the guests of an emulated cloud's instances.

The cheapest guest a provider's launch and the run's readiness wait reach for real: it listens on
a loopback address of its own, port 22, which the emulator hands out as every instance's public
address (so the provider connects as it would on the cloud, with no test-only override); the
console shows its host key, and the key the provider gave each instance (an EC2 key pair, GCE's
``ssh-keys`` metadata) is authorised the moment the instance is created, so the run's verified
handshake and login are real.  Used where many instances must come up fast and cheaply: the
fleet's parallel-launch tests and ``benchmarks/cloud_scaling.py``.  Needs root (sshd with its own
config, port 22).
"""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .moto_ec2 import HOST_KEY_BLOCK, ScriptedMachines
from .sshd import Sshd, running_sshd


class SshdGuest:
    """The sshd every instance is, and the keys authorised on it."""

    def __init__(self, server: Sshd) -> None:
        assert server.authorized_keys is not None
        self.server = server
        self.address = server.address
        self.host_key = server.host_key
        self.authorised: list[str] = []
        self._lock = threading.Lock()

    def authorise(self, public_key: str) -> None:
        """Let *public_key* ("ssh-ed25519 AAAA… comment") log in from now on (sshd reads the file
        at every login)."""
        assert self.server.authorized_keys is not None
        with self._lock:
            self.authorised.append(public_key.strip())
            with self.server.authorized_keys.open("a") as fh:
                fh.write(public_key.strip() + "\n")

    def console(self) -> str:
        """What cloud-init prints on the console: the host keys, as a guest announces them."""
        return HOST_KEY_BLOCK.format(key=self.host_key)

    def gce_insert(self, body: dict[str, Any]) -> None:
        """FakeGce.on_insert: authorise the keys of the instance's ``ssh-keys`` metadata."""
        items = (body.get("metadata") or {}).get("items", [])
        for line in next((i.get("value", "") for i in items if i["key"] == "ssh-keys"), "").splitlines():
            if ":" in line:
                self.authorise(line.split(":", 1)[1])


class SshdMachines(ScriptedMachines):
    """moto's instances as that guest: its address is their public address, their key pair is
    authorised when they start, and their console shows its host key (empty at first, as on EC2)."""

    def __init__(self, guest: SshdGuest) -> None:
        super().__init__(guest.host_key)
        self.guest = guest

    def start(self, backend: Any, instance: Any) -> None:
        super().start(backend, instance)
        instance.nics[0].public_ip = self.guest.address
        key = backend.key_pairs.get(instance.key_name) if instance.key_name else None
        if key is not None:
            public = key.material_public
            self.guest.authorise(public.decode() if isinstance(public, bytes) else public)


def _free_loopback_address() -> str:
    """A loopback address whose port 22 is free (the QEMU-backed emulators take 127.100-199.*)."""
    for _ in range(50):
        address = f"127.{random.randint(200, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
        with socket.socket() as sock:
            try:
                sock.bind((address, 22))
            except OSError:
                continue
            return address
    raise RuntimeError("no loopback address with a free port 22")


@contextmanager
def running_sshd_guest(tmp: Path) -> Iterator[SshdGuest]:
    """An sshd on a fresh loopback address, port 22, as the guest of every instance."""
    with running_sshd(tmp, address=_free_loopback_address(), port=22) as server:
        yield SshdGuest(server)

"""testinfra's paramiko backend on the verified connection ssh.py opens: the `host` checks use.

Apart from ssh.py so that what imports a connection (the providers, listed by every command and
by pytest's option parsing) does not import testinfra, a pytest plugin pytest must load itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import paramiko
from testinfra.backend.paramiko import ParamikoBackend
from testinfra.host import Host

from .machine import SSHEndpoint


class SharedConnectionBackend(ParamikoBackend):
    """testinfra's paramiko backend on our verified connection, reconnecting through *reconnect*.

    Commands from several threads run concurrently on one transport (a channel each).
    """

    NAME = "dct"

    def __init__(self, client: paramiko.SSHClient, reconnect: Callable[[], paramiko.SSHClient],
                 hostspec: str, **kwargs: Any) -> None:
        super().__init__(hostspec, **kwargs)
        self._client = client
        self._reconnect = reconnect
        self._lock = threading.Lock()

    @property  # type: ignore[override]
    def client(self) -> paramiko.SSHClient:
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            with self._lock:
                transport = self._client.get_transport()
                if transport is None or not transport.is_active():
                    self._client = self._reconnect()
        return self._client

    @client.deleter
    def client(self) -> None:
        """testinfra deletes the cached client after a broken transport; reconnect instead."""
        with self._lock:
            self._client.close()
            self._client = self._reconnect()

    def close(self) -> None:
        self._client.close()

    def replace_client(self, client: paramiko.SSHClient) -> None:
        """Use a new verified connection (after a reboot) for every later command."""
        with self._lock:
            self._client.close()
            self._client = client


def make_host(client: paramiko.SSHClient, reconnect: Callable[[], paramiko.SSHClient],
              endpoint: SSHEndpoint) -> Host:
    """A testinfra Host whose every command goes over *client*."""
    spec = f"{endpoint.user}@{endpoint.host}:{endpoint.port}"
    return Host(SharedConnectionBackend(client, reconnect, spec))

"""Serve a local apt repository to one QEMU guest: QEMU's ``guestfwd=…-cmd:`` runs this for each
connection the guest opens to the repository's address, with the connection on stdin and stdout.

Usage: python -m debian_cloud_tests.upgrade.serve DIRECTORY

No port is opened and nothing outlives the connection: only the guest whose network has the
forward reaches the repository.  stderr is the connection as well, so nothing is logged.
"""

from __future__ import annotations

import contextlib
import os
import sys
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any

#: the repository's address in the guest's own network (QEMU's user network keeps .2 for the
#: host, .3 for DNS and hands out .15 on): apt reaches it without a router, as on isolated runs
HOST_NUMBER = 4


def command(directory: Path) -> str:
    """The ``cmd:`` of a guestfwd serving *directory*."""
    return f"cmd:{sys.executable} -m {__name__} {directory}".replace(",", ",,")


def guest_address(network: str = "10.0.2.0/24") -> str:
    """The repository's address in the user network *network* (QEMU's ``net=`` value)."""
    import ipaddress

    return str(ipaddress.ip_network(network, strict=False).network_address + HOST_NUMBER)


class RepositoryHandler(SimpleHTTPRequestHandler):
    """GET and HEAD of the repository's files, kept alive for apt's pipelined requests; no listing."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        self.connection = self.request
        self.rfile = os.fdopen(0, "rb", buffering=65536, closefd=False)
        self.wfile = os.fdopen(1, "wb", buffering=65536, closefd=False)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            self.wfile.flush()

    def list_directory(self, path: str | os.PathLike[str]) -> None:  # type: ignore[override]
        self.send_error(404, "no listing")
        return None

    def log_message(self, format: str, *args: Any) -> None:
        return  # stderr is the guest's connection


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        return 2
    try:
        RepositoryHandler(None, ("guest", 0), _Server(), directory=argv[0])  # type: ignore[arg-type]
    except (BrokenPipeError, ConnectionResetError):
        return 0
    return 0


class _Server:
    """What the handler asks of its server: nothing but a name."""

    server_name = "repository"
    server_port = 80


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Relay stdin/stdout to a metadata server: QEMU's ``guestfwd=…-cmd:`` runs this for each
connection the guest opens to its metadata address, so every request reaches the emulator.

Usage: python -m debian_cloud_tests.datasources.relay (unix PATH | 127.0.0.1 PORT)

Only a unix socket or this host's loopback is ever connected to.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time

#: the emulator may still be binding its socket when the guest's first request comes
CONNECT_PATIENCE = 10.0


def command(target: str | int) -> str:
    """The ``cmd:`` of a guestfwd to *target*: a unix socket's path, or a loopback TCP port."""
    where = f"127.0.0.1 {target}" if isinstance(target, int) else f"unix {target}"
    return f"cmd:{sys.executable} -m {__name__} {where}".replace(",", ",,")


def _connect(kind: str, where: str) -> socket.socket:
    deadline = time.monotonic() + CONNECT_PATIENCE
    while True:
        try:
            if kind == "unix":
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(30)
                try:
                    sock.connect(where)
                except BaseException:
                    sock.close()
                    raise
                return sock
            return socket.create_connection(("127.0.0.1", int(where)), timeout=30)
        except (FileNotFoundError, ConnectionRefusedError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _pump_in(sock: socket.socket) -> None:
    while data := os.read(0, 65536):
        sock.sendall(data)
    sock.shutdown(socket.SHUT_WR)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("unix", "127.0.0.1"):
        return 2  # only ever a unix socket or loopback
    try:
        sock = _connect(argv[0], argv[1])
    except OSError:
        return 1
    threading.Thread(target=_pump_in, args=(sock,), daemon=True).start()
    while data := sock.recv(65536):
        os.write(1, data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

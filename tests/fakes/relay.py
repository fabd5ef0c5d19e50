"""Relay stdin/stdout to a TCP server: QEMU's ``guestfwd=…-cmd:`` runs this for each connection
the guest opens to 169.254.169.254:80, so every request reaches the metadata server on loopback.

Usage: python relay.py HOST PORT
"""

from __future__ import annotations

import os
import socket
import sys
import threading


def _pump_in(sock: socket.socket) -> None:
    while data := os.read(0, 65536):
        sock.sendall(data)
    sock.shutdown(socket.SHUT_WR)


def main() -> int:
    host, port = sys.argv[1], int(sys.argv[2])
    if not host.startswith("127."):
        return 2  # only ever loopback
    sock = socket.create_connection((host, port), timeout=30)
    threading.Thread(target=_pump_in, args=(sock,), daemon=True).start()
    while data := sock.recv(65536):
        os.write(1, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())

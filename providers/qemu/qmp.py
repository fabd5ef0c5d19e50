"""A minimal QMP client: enough for hard reset, power-off and quit."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any


class QMPError(Exception):
    pass


def connect_unix(sock: socket.socket, path: Path) -> None:
    """Connect *sock* to the Unix socket *path*, however deep: socket paths are limited to 108
    bytes, so its directory is reached through an fd."""
    dir_fd = os.open(path.parent, os.O_PATH)
    try:
        sock.connect(f"/proc/self/fd/{dir_fd}/{path.name}")
    finally:
        os.close(dir_fd)


class QMP:
    """One short-lived QMP session per command: QEMU allows one client at a time."""

    def __init__(self, path: Path, timeout: float = 5.0) -> None:
        self.path = path
        self.timeout = timeout

    def command(self, name: str, **arguments: Any) -> Any:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout)
            try:
                connect_unix(sock, self.path)
            except OSError as exc:
                raise QMPError(f"QMP socket {self.path}: {exc.strerror}") from None
            reader = sock.makefile("r")
            json.loads(reader.readline())  # greeting
            for cmd, args in (("qmp_capabilities", {}), (name, arguments)):
                msg: dict[str, Any] = {"execute": cmd}
                if args:
                    msg["arguments"] = args
                sock.sendall(json.dumps(msg).encode() + b"\n")
                reply = self._reply(reader)
            return reply

    @staticmethod
    def _reply(reader: Any) -> Any:
        while True:
            line = reader.readline()
            if not line:
                raise QMPError("QMP connection closed")
            msg = json.loads(line)
            if "event" in msg:
                continue
            if "error" in msg:
                raise QMPError(msg["error"].get("desc", str(msg["error"])))
            return msg.get("return")

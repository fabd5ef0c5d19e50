"""The platform's rate limit on a peer link: a relay between two guests' datagram sockets that
passes at most so many bytes per second each way, as a cloud's NIC shaper does.

Run as ``python -m debian_cloud_tests.providers.qemu.peerrelay DIR RATE SIDE_A SIDE_B``: it binds
``DIR/a.sock`` (guest A sends there) and ``DIR/b.sock`` (guest B sends there), passes A's frames to
*SIDE_B* (B's own socket) and B's to *SIDE_A*, prints ``ready`` once bound, and ends with its
parent (or on SIGTERM).  A frame that would wait longer than :data:`QUEUE_SECONDS` behind the
ones before it is dropped, as a full queue drops it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

#: the longest a frame may wait for its turn before the shaper drops it (a queue's depth)
QUEUE_SECONDS = 0.05
FRAME = 65536


def shape(source: socket.socket, sink: socket.socket, to: str, rate: float) -> None:
    """Pass frames from *source* to the socket *to* at *rate* bytes per second at most; a
    frame the receiving QEMU has no room for is lost, never waited on (a guest that stalls must
    not stall the other direction)."""
    sink.setblocking(False)
    free_at = time.monotonic()  # when the link has sent everything before the next frame
    while True:
        data = source.recv(FRAME)
        now = time.monotonic()
        start = max(now, free_at)
        if start - now > QUEUE_SECONDS:
            continue  # the queue is full: dropped
        free_at = start + len(data) / rate
        if start > now:
            time.sleep(start - now)
        # the guest's side not there (yet, or any more): lost, as on a wire
        with contextlib.suppress(OSError):
            sink.sendto(data, to)


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def main(argv: list[str]) -> int:
    where, rate, side_a, side_b = Path(argv[0]), float(argv[1]), argv[2], argv[3]
    _die_with_parent()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    sockets = {}
    for name in ("a", "b"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.bind(str(where / f"{name}.sock"))
        sockets[name] = sock
    out = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    back = threading.Thread(target=shape, args=(sockets["b"], out, side_a, rate), daemon=True)
    back.start()
    print("ready", flush=True)
    shape(sockets["a"], socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM), side_b, rate)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

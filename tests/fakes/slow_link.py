"""A slow link on this host's loopback: a TCP relay to a local port that waits before passing on
each piece a client sends, as a congested network would; so that a test's signal lands while an
upload is under way."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def slow_link(port: int, delay: float) -> Iterator[int]:
    """A relay to 127.0.0.1:*port*, *delay* seconds per piece sent; yields the relay's port."""

    class Relay(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            with socket.create_connection(("127.0.0.1", port), timeout=60) as upstream:
                back = threading.Thread(target=_pipe, args=(upstream, self.request, 0.0), daemon=True)
                back.start()
                _pipe(self.request, upstream, delay)
                back.join(timeout=60)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Relay)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _pipe(source: socket.socket, sink: socket.socket, delay: float) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(1 << 16):
            time.sleep(delay)
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)

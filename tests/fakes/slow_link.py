"""A slow link on this host's loopback: a TCP relay to a local port that waits before passing on
each piece a client sends, as a congested network would; so that a test's signal lands while an
upload is under way.  When the test leaves it, the link goes down at once: what it still held is
dropped, never delivered late (a stale request must not reach the server after a resumed run)."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def slow_link(port: int, delay: float) -> Iterator[int]:
    """A relay to 127.0.0.1:*port*, *delay* seconds per piece sent; yields the relay's port."""
    down = threading.Event()

    class Relay(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            with socket.create_connection(("127.0.0.1", port), timeout=60) as upstream:
                back = threading.Thread(target=_pipe, args=(upstream, self.request, 0.0, down),
                                        daemon=True)
                back.start()
                _pipe(self.request, upstream, delay, down)
                if down.is_set():  # cut, not closed: the server drops a request half sent
                    upstream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    with contextlib.suppress(OSError):
                        self.request.close()
                back.join(timeout=5)

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = False
        block_on_close = True  # server_close() waits for every relay to end

    server = Server(("127.0.0.1", 0), Relay)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        down.set()
        server.shutdown()
        server.server_close()


def _pipe(source: socket.socket, sink: socket.socket, delay: float, down: threading.Event) -> None:
    source.settimeout(0.5)
    with contextlib.suppress(OSError):
        while not down.is_set():
            try:
                data = source.recv(1 << 16)
            except TimeoutError:
                continue
            if not data or down.wait(delay):
                break
            sink.sendall(data)
    if not down.is_set():
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

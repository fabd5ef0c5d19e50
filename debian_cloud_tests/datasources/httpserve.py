"""A threaded HTTP server serving in the background, on 127.0.0.1 (a port the kernel chose) or on
a unix socket: what every emulated metadata service is, whatever it answers.

A unix socket is how a guest of the qemu provider reaches its emulator: the relay QEMU runs for
each connection may sit in a network namespace with no route to this host's loopback, but it
sees the run directory."""

from __future__ import annotations

import socket
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self, TextIO


class QuietHttpServer(ThreadingHTTPServer):
    """A threaded HTTP server that lets a client hang up mid-answer (a killed run, a guest
    reset) without a traceback; any other error of a handler is still printed."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class MetadataHandler(BaseHTTPRequestHandler):
    """The handlers' common part: a client on a unix socket has no address to print."""

    def address_string(self) -> str:
        return self.client_address[0] if isinstance(self.client_address, tuple) else "relay"

    #: headers every answer carries (a cloud's server names itself)
    extra_headers: tuple[tuple[str, str], ...] = ()
    content_type = "text/plain"

    def _send(self, status: int, body: str | bytes = b"", ctype: str = "") -> None:
        data = body.encode() if isinstance(body, str) else body
        ctype = ctype or self.content_type
        self.send_response(status)
        for name, value in self.extra_headers:
            self.send_header(name, value)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class LoopbackHttpServer(QuietHttpServer):
    """Serves *handler* on 127.0.0.1, or on the unix socket *unix_path* when given."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], name: str,
                 unix_path: Path | None = None) -> None:
        self.unix_path = unix_path
        if unix_path is not None:
            self.address_family = socket.AF_UNIX
            unix_path.unlink(missing_ok=True)
        super().__init__(str(unix_path) if unix_path is not None else ("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self.serve_forever, name=name, daemon=True)
        self.requests: list[str] = []  # what the guest asked, and what it reported
        #: where each request is written as well, one line each (a run's datasource.log)
        self.log: TextIO | None = None
        self._log_lock = threading.Lock()

    def server_bind(self) -> None:
        if self.unix_path is None:
            super().server_bind()
            return
        # HTTPServer's own would look the socket's "host" up by name
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "localhost", 0

    def record(self, line: str) -> None:
        self.requests.append(line)
        if self.log is not None:
            with self._log_lock:
                self.log.write(line + "\n")
                self.log.flush()

    @property
    def port(self) -> int:
        """The TCP port (0 on a unix socket)."""
        return int(self.server_address[1]) if self.unix_path is None else 0

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (also when it never started)."""
        if self._thread.is_alive():
            self.shutdown()
        self.server_close()
        if self.unix_path is not None:
            self.unix_path.unlink(missing_ok=True)

"""A threaded HTTP server on 127.0.0.1 with a port the kernel chose, serving in the background:
what every emulated metadata service is, whatever it answers."""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class QuietHttpServer(ThreadingHTTPServer):
    """A threaded HTTP server that lets a client hang up mid-answer (a killed run, a guest
    reset) without a traceback; any other error of a handler is still printed."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class LoopbackHttpServer(QuietHttpServer):

    def __init__(self, handler: type[BaseHTTPRequestHandler], name: str) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self.serve_forever, name=name, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (also when it never started)."""
        if self._thread.is_alive():
            self.shutdown()
        self.server_close()

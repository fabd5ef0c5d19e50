"""A Debian mirror for a walled-in guest: a DNS server that says every name is the mirror, and an
HTTP server that serves the files it is given: the InRelease files this machine's apt last
fetched, as they were signed by Debian, and the package indexes they name.  Run inside a network
namespace whose /etc/resolv.conf names 127.0.0.1 and that has MIRROR_ADDRESS as an address of
its own: QEMU's user network forwards the guest's DNS to it, and the guest's connections to that
address end in the namespace, so the guest's own, unchanged sources reach this mirror and nothing
else.  (Not at 127.0.0.1: a guest on the default network is
walled off the loopback of the host it runs on.)

Debian's images fetch over https: the mirror serves on 443 with a certificate for every name
from a test CA, which the guest is given through ``--ca-cert`` (cloud-init ``ca_certs``), just
as behind a TLS-intercepting proxy; plain http is served on 80.

``python3 archive_mirror.py LISTS_DIR READY_FILE CERT_CHAIN_PEM KEY_PEM`` serves until killed.
"""

from __future__ import annotations

import http.server
import socket
import ssl
import struct
import sys
import threading
from pathlib import Path

#: TEST-NET-1, an address of the test's namespace
MIRROR_ADDRESS = "192.0.2.80"


def dns_answer(query: bytes) -> bytes | None:
    """The reply to one query: A records point at the mirror; anything else has no answer."""
    if len(query) < 17:
        return None
    end = 12
    while end < len(query) and query[end]:
        end += query[end] + 1
    question = query[12:end + 5]
    qtype = struct.unpack("!H", query[end + 1:end + 3])[0] if len(query) >= end + 3 else 0
    answers = 1 if qtype == 1 else 0
    header = query[:2] + struct.pack("!HHHHH", 0x8180, 1, answers, 0, 0)
    record = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(MIRROR_ADDRESS) if answers else b""
    return header + question + record


def serve_dns(sock: socket.socket) -> None:
    while True:
        query, peer = sock.recvfrom(512)
        reply = dns_answer(query)
        if reply:
            sock.sendto(reply, peer)


def handler_for(lists: Path) -> type[http.server.BaseHTTPRequestHandler]:
    class Mirror(http.server.BaseHTTPRequestHandler):
        """GET http://HOST/PATH is apt's list file HOST_PATH (slashes as underscores); what is
        not there is 404, and apt tries its next way to the file."""

        def do_GET(self) -> None:
            host = (self.headers.get("Host") or "").split(":")[0]
            name = (host + self.path.split("?")[0]).replace("/", "_")
            path = lists / name
            if not path.is_file():
                self.send_error(404)
                return
            body = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            sys.stderr.write(f"mirror: {format % args}\n")

    return Mirror


def main() -> int:
    lists, ready, chain, key = (Path(a) for a in sys.argv[1:5])
    dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dns.bind(("127.0.0.1", 53))
    threading.Thread(target=serve_dns, args=(dns,), daemon=True).start()
    plain = http.server.ThreadingHTTPServer((MIRROR_ADDRESS, 80), handler_for(lists))
    threading.Thread(target=plain.serve_forever, daemon=True).start()
    tls = http.server.ThreadingHTTPServer((MIRROR_ADDRESS, 443), handler_for(lists))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain, key)
    tls.socket = context.wrap_socket(tls.socket, server_side=True)
    ready.write_text("ready\n")
    tls.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())

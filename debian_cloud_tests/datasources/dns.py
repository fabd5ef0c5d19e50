"""A DNS server of a few names on 127.0.0.1:53, for a network namespace the run made.

A cloud whose metadata service is reached by name (GCE's ``metadata.google.internal``) needs a
resolver: QEMU's user network forwards the guest's queries to the nameserver of the
``resolv.conf`` it sees, which in the namespace is this server.  It knows the names it is given
(A records; a known name has no AAAA record: NOERROR with no answer, as for an IPv4-only host).
Any other name is NXDOMAIN, so cloud-init's check for a resolver that answers everything (a
hijacking one) passes; or, given an upstream (the namespace's own way out), asked there.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Mapping
from contextlib import suppress

A, AAAA = 1, 28
NOERROR, FORMERR, NXDOMAIN = 0, 1, 3
TTL = 60


def _question(packet: bytes) -> tuple[str, int, int, int]:
    """(name, type, class, offset after the question) of a query's first question."""
    labels, at = [], 12
    while True:
        length = packet[at]
        if length == 0:
            at += 1
            break
        if length & 0xC0:  # no compression in a question
            raise ValueError("compressed question")
        labels.append(packet[at + 1:at + 1 + length].decode("ascii", "replace"))
        at += 1 + length
    qtype, qclass = struct.unpack("!HH", packet[at:at + 4])
    return ".".join(labels).lower(), qtype, qclass, at + 4


def answer(query: bytes, names: Mapping[str, str]) -> bytes | None:
    """The reply to *query* from the A records *names* (None: not a query worth a reply)."""
    if len(query) < 12:
        return None
    qid, flags, qdcount = struct.unpack("!HHH", query[:6])
    if flags & 0x8000:  # a reply, not a query
        return None
    rd = flags & 0x0100
    try:
        if qdcount != 1:
            raise ValueError("one question per query")
        name, qtype, qclass, end = _question(query)
    except (ValueError, IndexError, struct.error):
        return struct.pack("!HHHHHH", qid, 0x8000 | 0x0400 | rd | 0x0080 | FORMERR, 0, 0, 0, 0)
    address = names.get(name)
    records = b""
    if address is not None and qtype == A and qclass == 1:
        # the name by pointer to the question (offset 12), type A, class IN
        records = struct.pack("!HHHIH", 0xC00C, A, 1, TTL, 4) + socket.inet_aton(address)
    rcode = NOERROR if address is not None else NXDOMAIN
    header = struct.pack("!HHHHHH", qid, 0x8000 | 0x0400 | rd | 0x0080 | rcode, 1,
                         1 if records else 0, 0, 0)
    return header + query[12:end] + records


class DnsServer:
    """Answers *names* (name -> IPv4 address) on UDP 127.0.0.1:*port*; records every question."""

    def __init__(self, names: Mapping[str, str], port: int = 53, upstream: str | None = None) -> None:
        self.names = {n.lower().rstrip("."): a for n, a in names.items()}
        self.upstream = upstream
        self.questions: list[tuple[str, int]] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.settimeout(0.5)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="dns", daemon=True)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def start(self) -> DnsServer:
        self._thread.start()
        return self

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                query, peer = self.sock.recvfrom(512)
            except TimeoutError:
                continue
            except OSError:
                return
            question: tuple[str, int] | None = None
            with suppress(ValueError, IndexError, struct.error):
                question = _question(query)[:2]
                self.questions.append(question)
            if self.upstream and question is not None and question[0] not in self.names:
                threading.Thread(target=self._forward, args=(query, peer), daemon=True).start()
                continue
            reply = answer(query, self.names)
            if reply is not None:
                self.sock.sendto(reply, peer)

    def _forward(self, query: bytes, peer: tuple[str, int]) -> None:
        """Ask the upstream resolver and pass its reply on (none: the client asks again)."""
        assert self.upstream is not None
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as upstream:
            upstream.settimeout(5)
            with suppress(OSError):
                upstream.sendto(query, (self.upstream, 53))
                reply = upstream.recv(4096)
                self.sock.sendto(reply, peer)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.sock.close()


def serve_until_parent_dies(names: Mapping[str, str], upstream: str | None = None) -> None:
    """Serve in the foreground; exit with the process that started us (PR_SET_PDEATHSIG), so a
    namespace's resolver never outlives the run it serves."""
    import ctypes
    import os
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the parent is already gone
        return
    server = DnsServer(names, upstream=upstream)
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    server._serve()


if __name__ == "__main__":
    import sys

    # NAME=ADDRESS…, and --upstream=ADDRESS to ask there for any other name
    args = sys.argv[1:]
    given = dict(a.split("=", 1) for a in args if not a.startswith("--upstream="))
    upstream = next((a.split("=", 1)[1] for a in args if a.startswith("--upstream=")), None)
    serve_until_parent_dies(given, upstream)

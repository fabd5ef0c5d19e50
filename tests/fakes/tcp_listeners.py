"""TCP listeners that log who reached them, for a network namespace of the test's own.

``python3 tcp_listeners.py LOG READY NAME=ADDRESS:PORT...`` listens on each address, answers every
connection with ``reached NAME`` and appends ``NAME`` to LOG; READY is written once all listen.
Serves until killed.
"""

from __future__ import annotations

import socket
import sys
import threading
from pathlib import Path


def serve(listener: socket.socket, name: str, log: Path, lock: threading.Lock) -> None:
    while True:
        conn, _ = listener.accept()
        with conn, lock, log.open("a") as fh:
            fh.write(f"{name}\n")
            conn.sendall(f"reached {name}\n".encode())


def main() -> int:
    log, ready = Path(sys.argv[1]), Path(sys.argv[2])
    lock = threading.Lock()
    threads = []
    for spec in sys.argv[3:]:
        name, _, where = spec.partition("=")
        address, _, port = where.rpartition(":")
        listener = socket.create_server((address, int(port)))
        threads.append(threading.Thread(target=serve, args=(listener, name, log, lock), daemon=True))
    for thread in threads:
        thread.start()
    ready.write_text("ready\n")
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())

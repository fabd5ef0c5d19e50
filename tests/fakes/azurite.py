"""Azurite, Microsoft's Azure Storage emulator (npm package ``azurite``), serving blobs on
127.0.0.1 for the tests of publication on Azure: page blobs as Azure Storage keeps them.

scripts/setup.sh installs it under the venv (``share/debian-cloud-tests/azurite``); ``DCT_AZURITE``
names another ``azurite-blob``, else one on PATH is used.  It runs in memory on a port of its own
choosing, its telemetry off, and is stopped at teardown.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ACCOUNT = "devstoreaccount1"
#: azurite's well-known development account key (public, the same in every azurite)
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_LISTENING = re.compile(r"listens on (http://127\.0\.0\.1:(\d+))")
START_SECONDS = 60


@dataclass
class Azurite:
    url: str  # the account's blob endpoint

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
                f"BlobEndpoint={self.url};")

    def service(self) -> object:
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)


def binary() -> str | None:
    """The azurite-blob to run: DCT_AZURITE, the one setup.sh installed, or one on PATH."""
    given = os.environ.get("DCT_AZURITE")
    if given:
        return given if os.access(given, os.X_OK) else None
    installed = Path(sys.prefix) / "share/debian-cloud-tests/azurite/node_modules/.bin/azurite-blob"
    if os.access(installed, os.X_OK):
        return str(installed)
    return shutil.which("azurite-blob")


def unavailable() -> str | None:
    """Why azurite cannot run here, or None."""
    if binary() is None:
        return ("azurite not installed (scripts/setup.sh installs it; or npm install azurite@3.35.0 "
                "and set DCT_AZURITE to its azurite-blob)")
    if shutil.which("node") is None:
        return "node (nodejs) not installed: azurite runs on it"
    return None


@contextmanager
def running_azurite(workdir: Path) -> Iterator[Azurite]:
    """azurite-blob on 127.0.0.1 (a free port it picks), in memory, until the block ends."""
    exe = binary()
    assert exe is not None, unavailable()
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [exe, "--blobHost", "127.0.0.1", "--blobPort", "0", "--inMemoryPersistence",
         "--extentMemoryLimit", "512", "--skipApiVersionCheck", "--disableTelemetry",
         "--disableProductStyleUrl", "--silent"],
        cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    found: list[str] = []
    said: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:  # read to the end: a full pipe would block azurite
            said.append(line)
            match = _LISTENING.search(line)
            if match and not found:
                found.append(match.group(1))

    reader = threading.Thread(target=read, name="azurite-out", daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + START_SECONDS
        while not found:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"azurite did not start: {''.join(said)[-2000:]}")
            time.sleep(0.05)
        yield Azurite(f"{found[0]}/{ACCOUNT}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        reader.join(timeout=5)

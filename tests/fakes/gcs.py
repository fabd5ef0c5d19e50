"""Cloud Storage on 127.0.0.1 for ``publish --cloud gce``: gcp-storage-emulator (in memory), which
serves the JSON API google-cloud-storage speaks, its multipart and resumable uploads included.

``create_server(...).start()`` runs the emulator's HTTP server in a thread of its own and returns
once it listens (``Server.run()`` is the one that blocks, for its command line); port 0 picks a
free port, read back from the server's socket.  Clients reach it through the SDK's own
``STORAGE_EMULATOR_HOST``.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

STORAGE_URL = "https://storage.googleapis.com/"


@dataclass
class FakeGcs:
    url: str
    server: Any

    def client(self) -> Any:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(project="dct-test", credentials=AnonymousCredentials(),
                              client_options={"api_endpoint": self.url})

    def objects(self, bucket: str) -> dict[str, Any]:
        """Every object of *bucket*, by name."""
        return {blob.name: blob for blob in self.client().list_blobs(bucket)}

    def read(self, url: str) -> bytes:
        """The object an ``https://storage.googleapis.com/BUCKET/OBJECT`` URL names (KeyError:
        none), as Compute Engine reads an image's source."""
        if not url.startswith(STORAGE_URL):
            raise KeyError(url)
        try:
            with urllib.request.urlopen(f"{self.url}/{url.removeprefix(STORAGE_URL)}", timeout=30) as r:
                return bytes(r.read())
        except OSError as exc:  # HTTPError 404 included
            raise KeyError(f"{url}: {exc}") from None


@contextmanager
def running_gcs(*buckets: str) -> Iterator[FakeGcs]:
    from gcp_storage_emulator.server import create_server

    server = create_server("127.0.0.1", 0, in_memory=True)
    server.start()
    try:
        port = server._api._httpd.server_address[1]
        fake = FakeGcs(f"http://127.0.0.1:{port}", server)
        for bucket in buckets:
            fake.client().create_bucket(bucket)
        yield fake
    finally:
        server.stop()

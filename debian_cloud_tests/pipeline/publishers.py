"""The publish plug-in point: a publisher per destination scheme (`s3://…` → `s3`).

Publishers are found in the entry-point group `debian_cloud_tests.publishers`; the S3 publisher
is also built in, so a checkout works without installing the package.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol

from ..faibuild.manifest import sha256 as file_sha256
from . import verdict
from .errors import PublishRefusedError, UnknownPublisherError

GROUP = "debian_cloud_tests.publishers"
BUILTIN = {"s3": "debian_cloud_tests.pipeline.s3:S3Publisher"}


@dataclass(frozen=True)
class Release:
    """An image cleared for publication: its files, manifest data and the verdict that cleared it."""

    image: Path
    manifest: Path
    verdict: Path
    sha256: str
    meta: dict[str, Any]


class Publisher(Protocol):
    def publish(self, release: Release, destination: str) -> list[str]:
        """Upload and register *release*; return the locations written."""
        ...


def available() -> dict[str, str]:
    found = dict(BUILTIN)
    found.update({ep.name: ep.value for ep in entry_points(group=GROUP)})
    return found


def get(scheme: str) -> Publisher:
    target = available().get(scheme)
    if target is None:
        raise UnknownPublisherError(f"no publisher for {scheme}://; known: {', '.join(sorted(available()))}")
    module, _, attr = target.partition(":")
    return getattr(import_module(module), attr)()  # type: ignore[no-any-return]


def publish(image: Path, manifest: Path, verdict_path: Path, destination: str) -> list[str]:
    """Check the image against its manifest and a passing verdict, then hand it to a publisher."""
    digest = file_sha256(image)
    try:
        meta = json.loads(manifest.read_text())
    except (OSError, ValueError) as exc:
        raise PublishRefusedError(f"cannot read the manifest {manifest}: {exc}") from None
    if meta.get("sha256") != digest:
        raise PublishRefusedError(f"the manifest {manifest} is for another image "
                                  f"({str(meta.get('sha256'))[:12]}, this one is {digest[:12]})")
    verdict.require_publish(verdict_path, digest)
    scheme = destination.split("://", 1)[0] if "://" in destination else ""
    return get(scheme).publish(Release(image, manifest, verdict_path, digest, meta), destination)

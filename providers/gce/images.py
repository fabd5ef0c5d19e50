"""Debian's GCE images: the debian-cloud project's images, each in its release's family
(``debian-13``, ``debian-13-arm64``); the family's pointer is the image GCE launches for it."""

from __future__ import annotations

import re
from typing import Any

from debian_cloud_tests.locator.model import RELEASES, Offered, Query

from . import retry, session
from .errors import GceError

PROJECT = "debian-cloud"
ARCHITECTURES = {"X86_64": "amd64", "ARM64": "arm64"}
_FAMILY = re.compile(r"^debian-(?P<version>\d+)(?P<arm>-arm64)?$")


class GceImages:
    def __init__(self, clients: session.Clients | None = None) -> None:
        self._clients = clients

    def offered(self, query: Query, region: str | None) -> list[Offered]:
        c = self._clients or session.make_clients()
        images = [image for page in _pages(c) for image in page]
        families = {image.family for image in images if _in_query(image, query)}
        newest = {}
        for family in families:  # what GCE launches for the family (its newest, not deprecated)
            try:
                pointed = retry.call(c.images.get_from_family, "images.getFromFamily",
                                     project=PROJECT, family=family)
            except GceError as exc:
                if exc.reason != "notFound":
                    raise
                continue
            newest[pointed.name] = family
        return [Offered(id=f"projects/{PROJECT}/global/images/{image.name}", name=image.name,
                        version=_family(image)[0], arch=_family(image)[1],
                        created=image.creation_timestamp or "",
                        pointers=(f"family {newest[image.name]}",) if image.name in newest else (),
                        extra={"family": image.family,
                               **({"deprecated": image.deprecated.state}
                                  if image.deprecated and image.deprecated.state else {})})
                for image in images if _in_query(image, query)]


def _pages(c: session.Clients) -> Any:
    from google.cloud import compute_v1

    request = compute_v1.ListImagesRequest(project=PROJECT)
    pager = retry.call(c.images.list, "images.list", request=request)
    for page in pager.pages:
        yield list(page.items)


def _family(image: Any) -> tuple[str, str]:
    """The release and arch the image's family names ("", "" for another family)."""
    found = _FAMILY.match(image.family or "")
    if not found or found["version"] not in RELEASES:
        return "", ""
    arch = ARCHITECTURES.get(image.architecture or "", "arm64" if found["arm"] else "amd64")
    return found["version"], arch


def _in_query(image: Any, query: Query) -> bool:
    version, arch = _family(image)
    return bool(version) and (not query.version or version == query.version) and \
        (not query.arch or arch == query.arch)

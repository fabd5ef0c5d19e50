"""Debian's images on an OpenStack cloud: the Glance images whose properties say so
(``os_distro=debian``, ``os_version`` 12 or 13, ``architecture``), as Debian's openstack images
and most clouds' image pipelines set them.  Glance has no family: the newest is the pick."""

from __future__ import annotations

from typing import Any

from debian_cloud_tests.locator.model import RELEASES, Offered, Query

from . import retry, session

ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64", "amd64": "amd64"}


class OpenStackImages:
    def __init__(self, conn: Any = None) -> None:
        self._conn = conn

    def offered(self, query: Query, region: str | None) -> list[Offered]:
        conn = self._conn or session.connect(None, region)
        images = retry.call(lambda: list(conn.image.images()), "list images")
        return [_offered(image, str(conn.config.region_name or "")) for image in images
                if image.status == "active" and _in_query(image, query)]


def _property(image: Any, name: str) -> str:
    value = getattr(image, name, None) or (image.properties or {}).get(name)
    return str(value or "").lower()


def _release(image: Any) -> str:
    version = _property(image, "os_version").split(".")[0]
    if version in RELEASES:
        return version
    return next((v for v, codename in RELEASES.items() if codename == version), "")


def _in_query(image: Any, query: Query) -> bool:
    if _property(image, "os_distro") != "debian" or not _release(image):
        return False
    arch = ARCHITECTURES.get(_property(image, "architecture"), "")
    return (not query.version or _release(image) == query.version) and \
        (not query.arch or arch == query.arch)


def _offered(image: Any, region: str) -> Offered:
    return Offered(id=str(image.id), name=str(image.name or ""), version=_release(image),
                   arch=ARCHITECTURES.get(_property(image, "architecture"), ""),
                   created=str(image.created_at or ""), region=region,
                   extra={"visibility": str(image.visibility or "")})

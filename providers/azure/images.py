"""Debian's Azure Marketplace images: publisher ``Debian``, an offer per release (``debian-13``),
SKUs per generation and arch (``13`` Hyper-V gen 1, ``13-gen2``, ``13-arm64``) and dated
versions (``0.20261201.2310``: the build date in the middle); each SKU's newest version is what
``latest`` in a URN names."""

from __future__ import annotations

import re
from typing import Any

from debian_cloud_tests.errors import DCTError, UsageError
from debian_cloud_tests.locator.model import RELEASES, Offered, Query

from . import errors, session

PUBLISHER = "Debian"
_OFFER = re.compile(r"^debian-(?P<version>\d+)$")
_DATE = re.compile(r"^\d+\.(?P<date>\d{8})\.")


class AzureImages:
    def __init__(self, clients: session.Clients | None = None) -> None:
        self._clients = clients

    def offered(self, query: Query, region: str | None) -> list[Offered]:
        if not region:
            raise UsageError("images --provider azure: give --region, the location (e.g. westeurope)")
        images = (self._clients or session.make_clients()).compute.virtual_machine_images
        found: list[Offered] = []
        for offer in _names(errors.call(images.list_offers, "virtual_machine_images.list_offers",
                                        region, PUBLISHER)):
            named = _OFFER.match(offer)
            version = named["version"] if named else ""
            if version not in RELEASES or (query.version and version != query.version):
                continue
            for sku in _names(errors.call(images.list_skus, "virtual_machine_images.list_skus",
                                          region, PUBLISHER, offer)):
                arch = "arm64" if "arm64" in sku else "amd64"
                if query.arch and arch != query.arch:
                    continue
                versions = sorted(_names(_listed(images, region, offer, sku)), key=_version_key)
                for name in versions:
                    found.append(Offered(
                        id=f"{PUBLISHER}:{offer}:{sku}:{name}", name=f"{offer} {sku} {name}",
                        version=version, arch=arch, created=_created(name), region=region,
                        pointers=(f"{PUBLISHER}:{offer}:{sku}:latest",) if name == versions[-1] else (),
                        extra={"generation": "V1" if sku == version else "V2"}))
        return found


def sku_for(version: str, arch: str, bios: bool) -> str:
    """The SKU an alias names: arm64's, Hyper-V gen 1 for BIOS, else gen 2 (UEFI)."""
    return f"{version}-arm64" if arch == "arm64" else version if bios else f"{version}-gen2"


def _listed(images: Any, region: str, offer: str, sku: str) -> Any:
    try:
        return errors.call(images.list, "virtual_machine_images.list", region, PUBLISHER, offer, sku)
    except DCTError as exc:
        if "NotFound" in exc.message:
            return []
        raise


def _names(items: Any) -> list[str]:
    return [str(item.name) for item in items or []]


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in name.split("."))


def _created(version: str) -> str:
    found = _DATE.match(version)
    if not found:
        return ""
    d = found["date"]
    return f"{d[:4]}-{d[4:6]}-{d[6:]}T00:00:00Z"

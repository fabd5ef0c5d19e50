"""Defects the metadata suite's checks catch: the guest seeing less of its platform than the platform
gave it."""

from __future__ import annotations

from pathlib import Path

from ..disk import DiskLayout
from . import defect
from .plant import (
    append_cmdline,
)


@defect("cmdline-limits")
def cmdline_limits(tree: Path, arch: str, layout: DiskLayout) -> None:
    append_cmdline(tree, "maxcpus=1 mem=640M mitigations=off")

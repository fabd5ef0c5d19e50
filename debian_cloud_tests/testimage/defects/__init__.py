"""Defects that can be planted into a test image, one function each, in a module per suite whose
checks they prove; plant.py holds what they share.

A check is only trusted once it has been seen to fail: the framework's own tests build variant
images with some of these defects planted and assert that exactly the matching checks fail.  Each
defect is a small, realistic mistake an image build could make, applied to the root tree before
it becomes a disk.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from ..disk import DiskLayout

Defect = Callable[[Path, str, DiskLayout], None]
DEFECTS: dict[str, Defect] = {}


def defect(name: str) -> Callable[[Defect], Defect]:
    """Register a planting function under *name*."""
    def register(fn: Defect) -> Defect:
        DEFECTS[name] = fn
        return fn
    return register


def source_for(names: Sequence[str]) -> str:
    """What an image with the defects *names* planted depends on in this package: every module's
    code but the defects (the helpers, constants and registry) and those defects' own code, for
    the image cache key (adding or editing another defect leaves the key alone)."""
    helpers = "".join(path.read_text() for path in sorted(Path(__file__).parent.glob("*.py")))
    for fn in DEFECTS.values():
        helpers = helpers.replace(inspect.getsource(fn), "")
    helpers = re.sub(r"\n{3,}", "\n\n", helpers)
    return helpers + "".join(inspect.getsource(DEFECTS[name]) for name in sorted(set(names)))


# the suites' modules register their defects on import
from . import bvt, cloud_init, config, metadata, network, reboot, upgrade  # noqa: E402,F401

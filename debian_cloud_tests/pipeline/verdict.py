"""Is there a passing gate verdict for exactly these bytes?

The gate's JSON names the JUnit reports it judged; every one of them must be about this image
(suite property `image_sha256`), so a *publish* earned by another build cannot release this one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..gate import junit
from ..gate.errors import GateInputError
from ..junitprops import Prop
from .errors import PublishRefusedError


def load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PublishRefusedError(f"cannot read the gate verdict {path}: {exc}") from None
    if not isinstance(data, dict) or "verdict" not in data or "files" not in data:
        raise PublishRefusedError(f"{path} is not the gate's --json output")
    return data


def report_digests(report: Path) -> set[str]:
    """The image_sha256 properties of every run in one JUnit report, read as the gate reads it."""
    try:
        runs = junit.parse(report)
    except GateInputError as exc:
        raise PublishRefusedError(f"cannot read the gated report {report}: {exc}") from None
    return {run.prop(Prop.IMAGE_SHA256) for run in runs} - {""}


def require_publish(path: Path, sha256: str) -> dict[str, Any]:
    """Return the verdict if it says publish for *sha256*; otherwise refuse, saying why."""
    data = load(path)
    if data["verdict"] != "publish":
        raise PublishRefusedError(f"the gate verdict is {data['verdict']!r}, not 'publish': "
                                  f"{data.get('summary', '')}".rstrip(": "))
    files = [Path(f) if Path(f).is_absolute() or Path(f).exists() else path.parent / f
             for f in data["files"]]
    if not files:
        raise PublishRefusedError(f"the gate verdict {path} names no test report")
    for report in files:
        digests = report_digests(report)
        if digests != {sha256}:
            seen = ", ".join(sorted(d[:12] for d in digests)) or "none"
            raise PublishRefusedError(f"the gate verdict is for image(s) {seen}, not this image "
                                      f"{sha256[:12]} (report {report})")
    return data

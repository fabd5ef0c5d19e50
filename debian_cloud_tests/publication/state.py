"""What a publication has done so far, kept in a JSON file beside the image: written after every
change on the cloud, so an interrupted step resumes where it stopped, or removes what it left."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import PublicationStateError


@dataclass
class Publication:
    cloud: str
    image: str  # the file published
    sha256: str  # the file's, as the build's manifest names it
    run_id: str  # tags every resource, so gc finds what an interruption left
    regions: list[str]  # the first is where the image is uploaded, then copied from
    meta: dict[str, Any] = field(default_factory=dict)  # the build manifest's release, arch…
    #: the bytes uploaded (a raw image; a qcow2 one is converted first) and their sha256
    uploaded_sha256: str = ""
    #: the upload's cloud object (an EBS snapshot), once it exists; "complete" once whole
    upload: dict[str, Any] = field(default_factory=dict)
    #: region: the registered image's id there
    copies: dict[str, str] = field(default_factory=dict)
    #: region: the JUnit report of the run on that copy
    tested: dict[str, str] = field(default_factory=dict)
    #: "", "released" or "removed": what the last step decided
    outcome: str = ""
    #: what was made public (launch permissions, "latest" pointers), for the record
    released: list[str] = field(default_factory=list)

    def image_name(self) -> str:
        """The registered image's name: the build's, its date and the bytes' digest, unique per
        image (a registration an interruption lost the reply of is found again by it)."""
        stem = str(self.meta.get("name") or Path(self.image).stem)
        date = str(self.meta.get("build_date", ""))[:10].replace("-", "")
        return "-".join(p for p in (stem, date, self.uploaded_sha256[:12]) if p)

    def save(self, path: Path) -> None:
        """Atomically: a reader (or a resumed step) never sees half a file."""
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)


def default_path(image: Path, cloud: str) -> Path:
    return image.with_name(f"{image.name}.{cloud}-publication.json")


def load(path: Path, cloud: str, sha256: str) -> Publication | None:
    """The publication in *path* (None when there is none yet), which must be *cloud*'s for the
    image *sha256*: resuming another image's would release what was never tested."""
    try:
        raw = json.loads(path.read_text())
        found = Publication(**raw)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        raise PublicationStateError(f"publication state {path}: unreadable ({exc}); remove it "
                                    "after checking the cloud for what it names") from None
    if found.cloud != cloud or found.sha256 != sha256:
        raise PublicationStateError(
            f"publication state {path} is for {found.cloud} and image {found.sha256[:12]}, not "
            f"{cloud} and {sha256[:12]}: give --state a path of its own")
    return found

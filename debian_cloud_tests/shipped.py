"""The files the package ships for its users: Debian's gate policy and the FAI config space.

They are package data (``debian_cloud_tests/data``), so an installed wheel has them wherever it
is run from; ``examples/policy.toml`` and ``examples/fai`` in a checkout are links to them.
``python -m debian_cloud_tests.shipped policy|fai`` prints their paths, for
``gate --policy "$(python -m debian_cloud_tests.shipped policy)"``.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from .errors import MissingDependencyError, UsageError

REINSTALL = "reinstall debian-cloud-tests (pip install debian-cloud-tests)"


def _data(name: str, *, directory: bool) -> Path:
    """A real path to the shipped *name*: the gate and FAI read files, not resources.

    pip installs a wheel as plain files, so the resource is a path on disk; one inside a zip
    archive, or missing from a broken install, is an error naming the fix."""
    found = resources.files("debian_cloud_tests") / "data" / name
    if not isinstance(found, Path):
        raise MissingDependencyError(f"debian_cloud_tests/data/{name} is inside an archive ({found}), "
                                     f"not on disk: {REINSTALL}")
    if not (found.is_dir() if directory else found.is_file()):
        raise MissingDependencyError(f"{found} is missing from this installation: {REINSTALL}")
    return found


def policy() -> Path:
    """The publication policy for Debian's official images (the demo's and the pipeline's)."""
    return _data("policy.toml", directory=False)


def fai_config_space() -> Path:
    """The FAI config space `build` and `pipeline` use unless given --config-space."""
    return _data("fai", directory=True)


WHAT = {"policy": policy, "fai": fai_config_space}
#: policies `gate --policy NAME` knows by name, wherever the package is installed
POLICIES = {"debian": policy}


def policy_path(given: Path | None) -> Path | None:
    """`--policy` as given: a file, or the name of a shipped policy when no such file exists."""
    if given is not None and not given.exists() and str(given) in POLICIES:
        return POLICIES[str(given)]()
    return given


def main(argv: list[str] | None = None) -> int:
    """Print the path of each shipped file named (policy, fai)."""
    names = sys.argv[1:] if argv is None else argv
    unknown = [n for n in names if n not in WHAT]
    if not names or unknown:
        raise UsageError(f"usage: python -m debian_cloud_tests.shipped {'|'.join(WHAT)}…")
    for name in names:
        print(WHAT[name]())
    return 0


if __name__ == "__main__":
    from .errors import guarded

    sys.exit(guarded(main))

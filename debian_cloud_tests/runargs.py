"""pytest's arguments for one run of the suites, the same for `run`, `demo` and `pipeline`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .junitform import JUNIT_FAMILY


def pytest_argv(provider: str, image: str, junit: Path, artifacts: Path, *, arch: str | None = None,
                firmware: str | None = None, secure_boot: bool = False,
                extra: Sequence[str] = ()) -> list[str]:
    """The plugin's target, a JUnit file in the form CI servers read, the artefacts' directory,
    failures and errors summarised; *extra* last, so that what the user gives wins."""
    argv = ["-p", "no:cacheprovider", f"--provider={provider}", f"--image={image}",
            f"--junitxml={junit}", f"--artifacts-dir={artifacts}", "-o", f"junit_family={JUNIT_FAMILY}",
            "-rfE"]
    argv += [f"--arch={arch}"] if arch else []
    argv += [f"--firmware={firmware}"] if firmware else []
    argv += ["--secure-boot"] if secure_boot else []
    return [*argv, *extra]

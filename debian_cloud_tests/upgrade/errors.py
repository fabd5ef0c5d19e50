"""The upgrade's own bad input, each with its exit code (README, "Exit codes")."""

from __future__ import annotations

from ..errors import UsageError


class UnsignedRepositoryError(UsageError):
    """--upgrade names a repository whose Release is not signed, or not by --upgrade-key: apt
    on the instance would refuse it, so the run refuses it first."""

    exit_code = 38

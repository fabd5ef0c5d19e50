"""Errors of the image build, each with its own exit code (see docs/build.md).

A pipeline must tell "fix your command line" from "install FAI" from "free some space" from "the
build itself broke" without reading the message, so every case has its own code.
"""

from __future__ import annotations

from ..errors import BuildError, DCTError, MissingDependencyError, UsageError

__all__ = ["BuildError", "ConfigSpaceError", "InVmUnavailableError", "MissingDependencyError",
           "NeedsVmError", "NoSpaceError", "NotRootError", "UsageError"]


class NotRootError(DCTError):
    """fai-diskimage partitions a loop device and mounts it: only root can."""

    exit_code = 41


class NoSpaceError(DCTError):
    """The output file system cannot hold the image; found before FAI starts, not half-way."""

    exit_code = 42


class ConfigSpaceError(DCTError):
    """The config space does not define a class the build needs."""

    exit_code = 43


class NeedsVmError(DCTError):
    """The image needs what this host's kernel lacks (vfat for an EFI system partition)."""

    exit_code = 44


class InVmUnavailableError(DCTError):
    """`--in-vm` was asked for, but building in a disposable VM is not available here."""

    exit_code = 45

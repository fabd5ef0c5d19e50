"""Errors of publication on a cloud, with their exit codes (README: exit codes)."""

from __future__ import annotations

from ..errors import DCTError, UsageError


class PublicationPermissionError(DCTError):
    """The credentials may not upload, register or release images."""

    exit_code = 53


class UnknownRegionError(UsageError):
    """A region the cloud does not have (or this account has not enabled)."""

    exit_code = 54


class ImageTooLargeError(UsageError):
    """The image is larger than what the target accepts."""

    exit_code = 55


class PublicationStateError(UsageError):
    """The state file is unreadable, or is another image's or another cloud's."""

    exit_code = 56


class StorageMissingError(UsageError):
    """The bucket or container the image is uploaded to is not set or does not exist."""

    exit_code = 58

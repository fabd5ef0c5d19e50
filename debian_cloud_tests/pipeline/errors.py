"""Errors of the publish step, with their exit codes (see docs/build.md)."""

from __future__ import annotations

from ..errors import DCTError


class PublishRefusedError(DCTError):
    """No passing gate verdict for this image: publishing it would bypass the tests."""

    exit_code = 50


class PublishError(DCTError):
    """The destination refused or lost the upload (not the image's fault)."""

    exit_code = 51
    provider_problem = True


class UnknownPublisherError(DCTError):
    """No publisher is registered for the destination's scheme."""

    exit_code = 52

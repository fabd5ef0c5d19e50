"""The locator's errors, with their exit codes (README: exit codes)."""

from __future__ import annotations

from ..errors import ImageNotFoundError


class AliasNotFoundError(ImageNotFoundError):
    """An alias (`debian-13`) that names no image the cloud offers."""

    exit_code = 57

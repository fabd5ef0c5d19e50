"""Garbage collection for the ssh provider: it creates nothing, so there is nothing to collect.

Present so that every provider answers ``collect_garbage`` the same way.
"""

from __future__ import annotations

from datetime import datetime


def collect_garbage(now: datetime | None = None, region: str | None = None) -> list[str]:
    """Nothing is ever created on an already-running host; returns no ids."""
    return []

"""Deleting what a run made on a cloud: each deletion tried again where it may yet succeed, a
resource already gone counted as deleted, and every failure collected rather than raised, so one
stuck resource never keeps the others alive."""

from __future__ import annotations

from collections.abc import Callable

from .backoff import API
from .errors import DCTError, swept


def delete(remove: Callable[[], object], *, gone: Callable[[DCTError], bool],
           sleep: Callable[[float], None], attempts: int = 3,
           again: Callable[[DCTError], bool] = lambda exc: True) -> list[BaseException]:
    """Run *remove* (a provider call that raises typed errors) until it is done: ``[]`` when it
    was, or the resource was *gone* already; else ``[the last error]``.  *again* says whether a
    failure is worth another attempt (a dependency that goes away by itself, a failed delete
    operation); attempts are spaced by the API schedule."""
    for attempt in range(1, attempts + 1):
        try:
            remove()
            return []
        except DCTError as exc:
            if gone(exc):
                return []
            if attempt == attempts or not again(exc):
                return [exc]
            sleep(API.delay(attempt))
    return []


class Sweep:
    """What a garbage collection deleted, and what it could not."""

    def __init__(self) -> None:
        self.deleted: list[str] = []
        self.errors: list[BaseException] = []

    def record(self, what: str, failed: list[BaseException]) -> None:
        """Note the outcome of deleting *what* (``failed`` as :func:`delete` returns it)."""
        self.errors += failed
        if not failed:
            self.deleted.append(what)

    def done(self) -> list[str]:
        """What was deleted, or a CleanupError naming every failure (and what was deleted)."""
        return swept(self.deleted, self.errors)

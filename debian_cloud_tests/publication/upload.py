"""Sending an image's pieces on several connections at once, a bounded number in flight."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")


def in_parallel(put: Callable[[T], None], pieces: Iterable[T], threads: int, name: str) -> int:
    """``put`` every piece on *threads* connections, twice that many in flight at a time (the
    pieces are read as they go, and an interruption cancels what has not started); how many."""
    pool = ThreadPoolExecutor(threads, thread_name_prefix=name)
    pending: set[Future[None]] = set()
    sent = 0
    try:
        for piece in pieces:
            if len(pending) >= 2 * threads:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    future.result()
            pending.add(pool.submit(put, piece))
            sent += 1
        for future in pending:
            future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return sent

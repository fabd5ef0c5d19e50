"""Exponential backoff with jitter, the one retry schedule every cloud provider uses."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

#: the longest a cloud's ``Retry-After`` may make us wait before one retry
MAX_RETRY_AFTER = 60.0


@dataclass(frozen=True)
class Backoff:
    """Delay n (from 1) lies in [d/2, d] with d = min(cap, base·2^(n-1)): spread, yet bounded."""

    attempts: int = 6
    base: float = 1.0
    cap: float = 20.0

    def delay(self, attempt: int) -> float:
        ceiling = min(self.cap, self.base * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """The seconds a ``Retry-After`` header asks for, in seconds or as an HTTP date (None
    without one or when it cannot be read)."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def honouring(delay: float, asked: float | None, cap: float = MAX_RETRY_AFTER) -> float:
    """*delay*, or longer when the cloud asked for longer: never more than *cap* for the ask, so a
    bogus header cannot stall a run."""
    return max(delay, min(asked or 0.0, cap))


@dataclass(frozen=True)
class Retry:
    """One retried provider call: what, which attempt failed, why, and how long we waited."""

    action: str
    attempt: int
    cause: str
    waited: float


#: every provider retry of this process, for the run's JUnit properties (cloud trouble is
#: recorded apart from image defects, and a run that needed many retries says so)
RETRIES: list[Retry] = []


def record(action: str, attempt: int, cause: str, waited: float) -> float:
    """Note a retry about to wait *waited* seconds; returns *waited* for the caller's sleep."""
    RETRIES.append(Retry(action, attempt, cause[:80], waited))
    return waited


def properties() -> dict[str, str]:
    """``provider_retries`` (count) and ``provider_retry_log`` (one entry per retry)."""
    log = "; ".join(f"{r.action}: attempt {r.attempt} failed ({r.cause}), waited {r.waited:.1f}s"
                    for r in RETRIES)
    return {"provider_retries": str(len(RETRIES)), **({"provider_retry_log": log} if log else {})}

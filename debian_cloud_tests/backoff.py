"""Exponential backoff with jitter, the one retry loop every cloud provider calls its SDK through.

A provider says only what is SDK-specific: which exceptions its SDK raises, what one failure
means (:class:`Failure`: worth another try, its cause, how long the cloud asked us to wait) and
the typed error it becomes.  The loop, the schedule, the bound on ``Retry-After`` and the record
each retry leaves for the JUnit file are here, once.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

T = TypeVar("T")

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


#: the schedule of ordinary API calls
API = Backoff()


@dataclass(frozen=True)
class Failure:
    """What a provider makes of one failed call."""

    retryable: bool
    cause: str  # short, for the retry log: an error code or HTTP status
    retry_after: float | None = None  # seconds the cloud asked for (see :func:`retry_after`)
    policy: Backoff = API  # a slower schedule for failures that last minutes (capacity)


def call(fn: Callable[..., T], action: str, *args: Any, catch: tuple[type[BaseException], ...],
         classify: Callable[[BaseException], Failure],
         translate: Callable[[BaseException, str], Exception],
         sleep: Callable[[float], None], **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``, retried while *classify* says the failure is worth it, never
    sooner than the cloud asked (bounded); the last failure, or one not worth a retry, is raised
    as ``translate(exc, action)``.  Only exceptions in *catch* are handled: anything else is a
    bug of ours and propagates as it is."""
    attempt = 0
    while True:
        try:
            return fn(*args, **kwargs)
        except catch as exc:
            attempt += 1
            failure = classify(exc)
            if not failure.retryable or attempt >= failure.policy.attempts:
                raise translate(exc, action) from None
            wait = honouring(failure.policy.delay(attempt), failure.retry_after)
            sleep(record(action, attempt, failure.cause, wait))


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

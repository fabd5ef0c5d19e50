"""Exponential backoff with jitter, the one retry schedule every cloud provider uses."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delay n (from 1) lies in [d/2, d] with d = min(cap, base·2^(n-1)): spread, yet bounded."""

    attempts: int = 6
    base: float = 1.0
    cap: float = 20.0

    def delay(self, attempt: int) -> float:
        ceiling = min(self.cap, self.base * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


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

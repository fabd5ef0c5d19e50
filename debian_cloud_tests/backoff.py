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

"""Waiting longer after each failure in a row: the outbox's retries, the supervisor's restarts."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: ``first_delay`` doubling up to ``max_delay``."""

    first_delay: float = 5.0
    max_delay: float = 3600.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.first_delay <= 0 or self.max_delay < self.first_delay:
            raise ValueError("retry delays must be positive, the maximum not below the first")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    def delay(self, attempts: int) -> float:
        # The exponent is capped because 2.0 ** 1024 raises OverflowError: an item whose client
        # never appears is retried for good, and at ~1000 attempts that crashed the worker.
        exponent = min(max(attempts - 1, 0), 64)
        base = min(self.first_delay * 2.0**exponent, self.max_delay)
        # Jitter spreads retries of many items that failed together.
        return base * random.uniform(1 - self.jitter, 1 + self.jitter)

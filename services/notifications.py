"""What the operators must hear about, as plain data; how it reaches them is wired in ``bot/``.

Services report a ``OperatorNotice`` to a ``Notifier`` and carry on: notifying never blocks or
fails the work that caused it. Details hold IDs and masked emails only, never keys."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

log = logging.getLogger(__name__)

# Distinct details shown per event in one batch; the rest are counted.
MAX_EXAMPLES = 3


class OperatorEvent(StrEnum):
    CONFLICT = "conflict"  # an email or GetCourse user claimed by a second Telegram account
    DELIVERY_FAILED = "delivery_failed"  # a Salebot write failed permanently
    GETCOURSE_BUDGET_EXHAUSTED = "getcourse_budget_exhausted"  # GetCourse answered 903
    GETCOURSE_MISCONFIGURED = "getcourse_misconfigured"  # bad key, redirect, plan without API
    SALEBOT_KEY_REJECTED = "salebot_key_rejected"  # Salebot refused the key or its scope
    LINKED_USER_GONE = "linked_user_gone"  # a full sync no longer finds a linked GetCourse user
    LINKED_USER_BLOCKED = "linked_user_blocked"  # a linked GetCourse user is banned/deactivated
    PROOF_FAILURES = "proof_failures"  # an unusual number of failed proofs of ownership
    UNKNOWN_EMAILS = "unknown_emails"  # an unusual number of emails GetCourse does not know
    GETCOURSE_FIELD_MISSING = "getcourse_field_missing"  # the import refused our field names
    GETCOURSE_FIELD_WRITE_FAILED = "getcourse_field_write_failed"  # a field write given up
    CALLBACK_FAILED = "callback_failed"  # a Salebot callback refused or perhaps not delivered


@dataclass(frozen=True)
class OperatorNotice:
    event: OperatorEvent
    details: dict[str, str] = field(default_factory=dict)


class Notifier(Protocol):
    def notify(self, notice: OperatorNotice) -> None:
        """Queue a notice; returns at once and never raises."""
        ...


class NullNotifier:
    """For setups without an operator chat, and for tests that do not look at notices."""

    def notify(self, notice: OperatorNotice) -> None:
        return None


@dataclass
class NoticeGroup:
    """The notices of one event gathered into one message: how many came, and the first few
    distinct details with how often each came."""

    event: OperatorEvent
    count: int = 0
    examples: list[tuple[dict[str, str], int]] = field(default_factory=list)

    @property
    def unlisted(self) -> int:
        """Notices whose details are not among the examples."""
        return self.count - sum(times for _, times in self.examples)

    def add(self, details: dict[str, str], times: int, max_examples: int) -> None:
        self.count += times
        for index, (known, seen) in enumerate(self.examples):
            if known == details:
                self.examples[index] = (known, seen + times)
                return
        if len(self.examples) < max_examples:
            self.examples.append((dict(details), times))

    def absorb(self, newer: NoticeGroup, max_examples: int) -> None:
        for details, times in newer.examples:
            self.add(details, times, max_examples)
        self.count += newer.unlisted


Deliver = Callable[[list[NoticeGroup]], Awaitable[None]]


class BurstWatch:
    """Counts occurrences over a sliding ``window`` and says (once per window) when they reach
    ``threshold``: "unusual" is a number, and one notice stands for the whole burst."""

    def __init__(
        self, threshold: int, window: float = 3600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._threshold = threshold
        self._window = window
        self._clock = clock
        self._times: deque[float] = deque()
        self._quiet_until = 0.0

    def record(self) -> int | None:
        """Count one; the count within the window when a notice is due, else ``None``."""
        now = self._clock()
        self._times.append(now)
        while self._times[0] <= now - self._window:
            self._times.popleft()
        if len(self._times) < self._threshold or now < self._quiet_until:
            return None
        self._quiet_until = now + self._window
        return len(self._times)


class GroupingNotifier:
    """Gathers notices and hands them to a ``deliver`` callback in batches, so an outage that
    fails a thousand writes reads as a few messages with counts, not a thousand messages.

    The first notice after a quiet spell goes out ``gather`` seconds later, together with
    whatever else the same trouble caused meanwhile; after that, at most one batch leaves per
    ``interval``. A batch that could not be delivered is kept and tried with the next one."""

    def __init__(
        self,
        *,
        interval: float = 60.0,
        gather: float = 2.0,
        max_examples: int = MAX_EXAMPLES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval = interval
        self._gather = gather
        self._max_examples = max_examples
        self._clock = clock
        self._pending: dict[OperatorEvent, NoticeGroup] = {}
        self._arrived = asyncio.Event()
        self._stopping = asyncio.Event()
        self._last_batch_at: float | None = None

    def notify(self, notice: OperatorNotice) -> None:
        group = self._pending.setdefault(notice.event, NoticeGroup(notice.event))
        group.add(notice.details, 1, self._max_examples)
        self._arrived.set()

    def stop(self) -> None:
        """Deliver what is pending once more, then leave ``run``."""
        self._stopping.set()
        self._arrived.set()

    async def run(self, deliver: Deliver) -> None:
        while not self._stopping.is_set():
            await self._arrived.wait()
            wait = self._gather
            if self._last_batch_at is not None:
                wait = max(wait, self._last_batch_at + self._interval - self._clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), wait)
            await self._send(deliver)
        await self._send(deliver)

    async def _send(self, deliver: Deliver) -> None:
        self._arrived.clear()
        batch, self._pending = list(self._pending.values()), {}
        if not batch:
            return
        self._last_batch_at = self._clock()
        summary = ", ".join(f"{group.event}x{group.count}" for group in batch)
        try:
            await deliver(batch)
        except Exception as error:
            # Telegram down, the chat gone, a flood limit: keep the notices for the next batch.
            log.warning("operator notices not delivered (%s): %s", summary, error)
            self._put_back(batch)
            return
        log.info("operator notices delivered: %s", summary)

    def _put_back(self, batch: list[NoticeGroup]) -> None:
        for group in batch:
            newer = self._pending.get(group.event)
            if newer is not None:
                group.absorb(newer, self._max_examples)
            self._pending[group.event] = group
        self._arrived.set()

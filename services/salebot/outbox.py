"""The outbox worker: delivers queued Salebot writes, retrying with backoff until they land.

Items live in SQLite, so a write survives a restart; the worker wakes when a link is stored
and otherwise sleeps until the next retry is due."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from services.backoff import RetryPolicy
from services.errors import (
    SalebotBadResponse,
    SalebotClientNotFound,
    SalebotError,
    SalebotRejected,
)
from services.models import OutboxItem
from services.notifications import Notifier, NullNotifier, OperatorEvent, OperatorNotice
from services.redaction import error_text
from services.salebot.client import SalebotClient
from services.storage.database import Database
from services.storage.links import LinkRepository
from services.storage.outbox import OutboxRepository

log = logging.getLogger(__name__)


class DeliveryCause(StrEnum):
    CLIENT_NOT_FOUND = "client_not_found"
    UNAVAILABLE = "salebot_unavailable"
    BAD_RESPONSE = "bad_response"
    REJECTED = "rejected"

    @classmethod
    def of(cls, error: SalebotError) -> DeliveryCause:
        if isinstance(error, SalebotClientNotFound):
            return cls.CLIENT_NOT_FOUND
        if isinstance(error, SalebotRejected):
            return cls.REJECTED
        if isinstance(error, SalebotBadResponse):
            return cls.BAD_RESPONSE
        return cls.UNAVAILABLE


@dataclass(frozen=True)
class DeliverySchedule:
    """When failed writes are tried again.

    Salebot being down or odd: ``retry``. No Salebot client yet (the person has not started
    the school's funnel bot): the same quick first retries, then up to ``missing_client``'s
    longer cap, for ``missing_client_for`` seconds before the write is given up. Rejections
    (bad key, missing scope, invalid variables) are not retried."""

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    missing_client: RetryPolicy = field(default_factory=lambda: RetryPolicy(max_delay=6 * 3600.0))
    missing_client_for: float = 14 * 24 * 3600.0


class DeliveryLane(Protocol):
    """Writes of another kind that the worker delivers right after the Salebot writes (so a
    follow-up waiting for a link's variables goes in the same pass)."""

    async def deliver_due(self) -> int: ...

    async def next_due_at(self) -> float | None: ...


class OutboxWorker:
    def __init__(
        self,
        database: Database,
        salebot: SalebotClient,
        schedule: DeliverySchedule | None = None,
        clock: Callable[[], float] = time.time,
        batch_size: int = 50,
        idle_check: float = 60.0,
        notifier: Notifier | None = None,
        lanes: Sequence[DeliveryLane] = (),
    ) -> None:
        self._database = database
        self._outbox = OutboxRepository(database)
        self._salebot = salebot
        self._schedule = schedule or DeliverySchedule()
        self._notifier = notifier or NullNotifier()
        self._clock = clock
        self._batch_size = batch_size
        self._idle_check = idle_check
        self._lanes = tuple(lanes)
        self._wakeup = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        self._wakeup.set()

    def stop(self) -> None:
        """Finish the item in progress, then leave ``run``."""
        self._stopping = True
        self._wakeup.set()

    async def run(self) -> None:
        log.info("outbox worker started")
        # An unexpected error ends this call; the supervisor (services.supervision) logs it
        # and starts the worker again after a pause.
        while not self._stopping:
            self._wakeup.clear()
            await self.deliver_due()
            if self._stopping:
                break
            next_due = await self._next_due_at()
            timeout = self._idle_check
            if next_due is not None:
                timeout = min(max(next_due - self._clock(), 0.0), self._idle_check)
            await self._pause(timeout)
        log.info("outbox worker stopped")

    async def _pause(self, seconds: float) -> None:
        """Sleep until ``seconds`` pass or someone wakes the worker."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), seconds)

    async def deliver_due(self) -> int:
        """Attempt every item that is due now, then the lanes' items; returns how many Salebot
        writes were delivered."""
        delivered = 0
        while not self._stopping:
            items = await self._outbox.due(self._clock(), self._batch_size)
            if not items:
                break
            for item in items:
                if self._stopping:
                    break
                delivered += await self._deliver(item)
        for lane in self._lanes:
            if not self._stopping:
                await lane.deliver_due()
        return delivered

    async def _next_due_at(self) -> float | None:
        times = [await self._outbox.next_due_at()]
        times += [await lane.next_due_at() for lane in self._lanes]
        return min((value for value in times if value is not None), default=None)

    async def _deliver(self, item: OutboxItem) -> int:
        try:
            client_id = await self._salebot.find_client_id(item.telegram_id)
            await self._salebot.save_variables(client_id, item.variables)
        except SalebotError as error:
            await self._record_failure(item, error)
            return 0
        async with self._database.transaction() as tx:
            await OutboxRepository.mark_delivered(tx, item.id, self._clock())
            await LinkRepository.set_salebot_client_id(tx, item.telegram_id, client_id)
        log.info(
            "salebot write %s delivered: telegram %s -> client %s",
            item.id,
            item.telegram_id,
            client_id,
        )
        return 1

    async def _record_failure(self, item: OutboxItem, error: SalebotError) -> None:
        now = self._clock()
        cause = DeliveryCause.of(error)
        attempt = item.attempts + 1
        waited = now - item.created_at.timestamp()
        permanent = cause is DeliveryCause.REJECTED or (
            cause is DeliveryCause.CLIENT_NOT_FOUND and waited >= self._schedule.missing_client_for
        )
        text = error_text(error)
        if permanent:
            async with self._database.transaction() as tx:
                if cause is DeliveryCause.CLIENT_NOT_FOUND:
                    # No client, nothing to blank: an erased person's write goes too.
                    await OutboxRepository.drop_erasing(tx, item.id)
                await OutboxRepository.give_up(tx, item.id, cause, text, now)
            log.error(
                "salebot write %s for telegram %s failed for good (%s): %s",
                item.id,
                item.telegram_id,
                cause,
                text,
            )
            self._notifier.notify(_notice_for(item, cause, error))
            return
        policy = (
            self._schedule.missing_client
            if cause is DeliveryCause.CLIENT_NOT_FOUND
            else self._schedule.retry
        )
        delay = policy.delay(attempt)
        async with self._database.transaction() as tx:
            await OutboxRepository.reschedule(tx, item.id, cause, text, now + delay, now)
        log.warning(
            "salebot write %s for telegram %s failed (attempt %d, %s): %s; retry in %.0fs",
            item.id,
            item.telegram_id,
            attempt,
            cause,
            text,
            delay,
        )

    async def person_is_back(self, telegram_id: int) -> None:
        """The person wrote to us: a write waiting for their Salebot client is tried now
        (they may have just started the funnel bot)."""
        if await self._outbox.retry_now(telegram_id, DeliveryCause.CLIENT_NOT_FOUND, self._clock()):
            self.wake()


def _notice_for(item: OutboxItem, cause: DeliveryCause, error: SalebotError) -> OperatorNotice:
    details = {"telegram_id": str(item.telegram_id), "cause": cause, "error": error_text(error)}
    if cause is DeliveryCause.REJECTED and error.http_status in {401, 403}:
        return OperatorNotice(OperatorEvent.SALEBOT_KEY_REJECTED, details)
    return OperatorNotice(OperatorEvent.DELIVERY_FAILED, details)

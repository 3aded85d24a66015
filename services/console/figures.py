"""The figures operators and Prometheus see, counted in one place: ``/stats``, ``/health`` and
``/metrics`` show the same numbers because each reads them here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.getcourse.budget import ExportBudget
from services.getcourse.directory_sync import SyncKind
from services.storage.bridge import EventRepository
from services.storage.database import Database
from services.storage.deliveries import DeliveryRepository
from services.storage.directory import DirectoryRepository
from services.storage.links import LinkRepository
from services.storage.outbox import OutboxRepository


@dataclass(frozen=True)
class SalebotWrites:
    pending: int  # still to be delivered
    retrying: int  # of those, after at least one error
    failed: int  # given up on; an operator's /resync revives them


@dataclass(frozen=True)
class Figures:
    links: int
    writes: SalebotWrites
    budget_used: int  # export-API requests in the rolling 2 hours
    budget_limit: int
    directory_users: int


class FigureBook:
    def __init__(self, database: Database, budget: ExportBudget) -> None:
        self._budget = budget
        self._links = LinkRepository(database)
        self._deliveries = DeliveryRepository(database)
        self._directory = DirectoryRepository(database)
        self._events = EventRepository(database)
        self._outbox = OutboxRepository(database)

    async def read(self) -> Figures:
        return Figures(
            links=await self._links.count(),
            writes=await self.writes(),
            budget_used=await self._budget.used(),
            budget_limit=self._budget.limit,
            directory_users=await self._directory.count(),
        )

    async def writes(self) -> SalebotWrites:
        waiting = await self._deliveries.waiting_by_cause()
        return SalebotWrites(
            pending=sum(n for (state, _), n in waiting.items() if state == "pending"),
            retrying=sum(
                n for (state, cause), n in waiting.items() if state == "pending" and cause
            ),
            failed=sum(n for (state, _), n in waiting.items() if state == "failed"),
        )

    async def oldest_pending_write_since(self) -> datetime | None:
        return await self._outbox.oldest_pending_since()

    async def last_sync_finished(self, kind: SyncKind) -> float | None:
        return await self._directory.last_finished(kind)

    async def events_waiting(self) -> int:
        return await self._events.waiting_count()

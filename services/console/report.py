"""The bot as a whole, for operators: the Salebot write queue, the figures of ``/stats`` with
their chart, the audit trail and ``/health``. The figures shared with ``/metrics`` are read from
``FigureBook``, never counted here."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from services.console.charts import DayCount, links_per_day_png
from services.console.figures import FigureBook
from services.getcourse.budget import ExportBudget
from services.getcourse.directory_sync import DirectorySync, SyncKind
from services.health import GETCOURSE, SALEBOT, CallTracker, ServiceStatus
from services.storage.audit import AuditEntry, AuditRepository
from services.storage.bridge import CallbackRepository, EventRepository, FieldWriteRepository
from services.storage.console import ConsoleQueries
from services.storage.database import Database
from services.storage.deliveries import Delivery, DeliveryRepository
from services.storage.directory import DirectoryRepository, DoneRun, SyncRun
from services.storage.link_events import LinkEventKind, LinkEventRepository
from services.storage.queued_lookups import QueuedLookupRepository
from services.supervision import LoopStatus, Supervisor

DAY = 24 * 3600.0
CHART_DAYS = 30


@dataclass(frozen=True)
class Deployment:
    """What this instance runs as: its version and its settings without secrets."""

    version: str
    mode: str
    settings: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class QueueReport:
    waiting: dict[tuple[str, str | None], int]  # (state, cause) -> writes
    oldest: list[Delivery]
    # The same counts for GetCourse field writes and Salebot callbacks; a callback that may
    # have landed is 'uncertain' and waits for an operator.
    field_writes: dict[tuple[str, str | None], int] = field(default_factory=dict)
    callbacks: dict[tuple[str, str | None], int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Salebot writes waiting."""
        return sum(self.waiting.values())

    @property
    def follow_ups(self) -> int:
        """GetCourse field writes and Salebot callbacks waiting (or perhaps landed)."""
        return sum(self.field_writes.values()) + sum(self.callbacks.values())


@dataclass(frozen=True)
class Counts:
    day: int
    week: int
    total: int


@dataclass(frozen=True)
class Stats:
    linked_now: int
    made: Counts
    changed: Counts
    removed: Counts
    not_found: Counts
    conflicts: Counts
    pending: int
    retrying: int  # pending writes whose last attempt failed
    failed: int  # writes given up, until an operator retries them
    budget_used: int
    budget_limit: int
    directory_users: int
    days: list[DayCount]
    # GetCourse events by name and where they stand (delivered, waiting, failed, uncertain,
    # waiting_link, expired).
    events: dict[tuple[str, str], int] = field(default_factory=dict)


@dataclass(frozen=True)
class DirectoryReport:
    """The local copy of the school's GetCourse users and the syncs that fill it."""

    users: int
    last_full: DoneRun | None
    last_incremental: DoneRun | None
    # Runs not finished: stopped early (export budget, a GetCourse failure, a restart), or the
    # one going on now; a run of the same kind resumes where it stopped.
    unfinished: list[SyncRun]
    sync_running: bool
    lookups_waiting: int  # people waiting for an export to answer their email
    oldest_lookup_since: datetime | None

    @property
    def never_synced(self) -> bool:
        """No sync has completed: a lookup finds only people looked up before, the rest are
        asked of GetCourse live."""
        return self.last_full is None and self.last_incremental is None


@dataclass(frozen=True)
class HealthReport:
    deployment: Deployment
    started_at: datetime
    database_bytes: int
    pending: int
    failed: int
    oldest_waiting_since: datetime | None
    getcourse: ServiceStatus
    salebot: ServiceStatus
    budget_used: int
    budget_limit: int
    budget_paused_until: datetime | None  # after a 903 all export traffic waits
    directory: DirectoryReport
    loops: list[LoopStatus]  # the background loops, as the supervisor sees them


class ConsoleReports:
    def __init__(
        self,
        database: Database,
        figures: FigureBook,
        budget: ExportBudget,
        sync: DirectorySync,
        calls: CallTracker,
        deployment: Deployment,
        *,
        supervisor: Supervisor | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._figures = figures
        self._budget = budget
        self._sync = sync
        self._calls = calls
        self._deployment = deployment
        self._supervisor = supervisor or Supervisor()
        self._clock = clock
        self._started_at = clock()
        self._queries = ConsoleQueries(database)
        self._deliveries = DeliveryRepository(database)
        self._field_writes = FieldWriteRepository(database)
        self._callbacks = CallbackRepository(database)
        self._events = LinkEventRepository(database)
        self._gc_events = EventRepository(database)
        self._gc_directory = DirectoryRepository(database)
        self._queued = QueuedLookupRepository(database)
        self._audit = AuditRepository(database)

    async def queue(self, oldest: int = 5) -> QueueReport:
        return QueueReport(
            waiting=await self._deliveries.waiting_by_cause(),
            oldest=await self._deliveries.oldest_waiting(oldest),
            field_writes=await self._field_writes.waiting_by_cause(),
            callbacks=await self._callbacks.waiting_by_cause(self._clock() - 7 * DAY),
        )

    async def stats(self) -> Stats:
        now = self._clock()
        windows = (now - DAY, now - 7 * DAY, 0.0)
        events = [await self._events.counts_since(since) for since in windows]
        not_found = [await self._queries.not_found_since(since) for since in windows]
        conflicts = [await self._queries.conflicts_since(since) for since in windows]
        figures = await self._figures.read()
        return Stats(
            linked_now=figures.links,
            made=Counts(*(counts[LinkEventKind.LINKED] for counts in events)),
            changed=Counts(*(counts[LinkEventKind.RELINKED] for counts in events)),
            removed=Counts(*(counts[LinkEventKind.UNLINKED] for counts in events)),
            not_found=Counts(*not_found),
            conflicts=Counts(*conflicts),
            pending=figures.writes.pending,
            retrying=figures.writes.retrying,
            failed=figures.writes.failed,
            budget_used=figures.budget_used,
            budget_limit=figures.budget_limit,
            directory_users=figures.directory_users,
            days=await self._days(now),
            events=await self._gc_events.counts(),
        )

    async def _days(self, now: float) -> list[DayCount]:
        """Links made and changed on each of the last CHART_DAYS UTC days, today included."""
        today = datetime.fromtimestamp(now, UTC).date()
        first = today - timedelta(days=CHART_DAYS - 1)
        start = datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp()
        counts = await self._events.per_day(start)
        days: list[date] = [first + timedelta(days=offset) for offset in range(CHART_DAYS)]
        return [
            DayCount(
                day,
                counts.get((day, LinkEventKind.LINKED), 0),
                counts.get((day, LinkEventKind.RELINKED), 0),
            )
            for day in days
        ]

    async def links_chart(
        self, stats: Stats, *, title: str, made_label: str, changed_label: str
    ) -> bytes:
        """A PNG of ``stats.days``; drawn off the event loop."""
        return await asyncio.to_thread(
            lambda: links_per_day_png(
                stats.days, title=title, made_label=made_label, changed_label=changed_label
            )
        )

    async def audit(self, limit: int) -> list[AuditEntry]:
        return await self._audit.latest(limit)

    async def health(self) -> HealthReport:
        figures = await self._figures.read()
        oldest = await self._deliveries.oldest_waiting(1)
        return HealthReport(
            deployment=self._deployment,
            started_at=datetime.fromtimestamp(self._started_at, UTC),
            database_bytes=await self._queries.database_bytes(),
            pending=figures.writes.pending,
            failed=figures.writes.failed,
            oldest_waiting_since=oldest[0].created_at if oldest else None,
            getcourse=self._calls.status(GETCOURSE),
            salebot=self._calls.status(SALEBOT),
            budget_used=figures.budget_used,
            budget_limit=figures.budget_limit,
            budget_paused_until=_unix_datetime(await self._budget.paused_until()),
            directory=await self._directory_report(figures.directory_users),
            loops=self._supervisor.statuses(),
        )

    async def _directory_report(self, users: int) -> DirectoryReport:
        unfinished = [await self._gc_directory.open_run(kind) for kind in SyncKind]
        return DirectoryReport(
            users=users,
            last_full=await self._gc_directory.last_done(SyncKind.FULL),
            last_incremental=await self._gc_directory.last_done(SyncKind.INCREMENTAL),
            unfinished=[run for run in unfinished if run is not None],
            sync_running=self._sync.running,
            lookups_waiting=await self._queued.count_waiting(),
            oldest_lookup_since=_unix_datetime(await self._queued.oldest_waiting_since()),
        )


def _unix_datetime(stamp: float | None) -> datetime | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, UTC)

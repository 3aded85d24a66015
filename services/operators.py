"""The operator console: find a person, see whether their link is healthy, fix it, and watch
the bot as a whole.

Every change an operator makes is written to the audit table in the transaction of the change
itself. Nothing here knows Telegram: the handlers render the records these methods return."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from services.bridge import LinkFollowUps
from services.charts import DayCount, links_per_day_png
from services.directory import UserDirectory
from services.directory_sync import DirectorySync, SyncKind
from services.email import mask_email, normalize_email
from services.errors import InvalidEmail, ServiceError
from services.export_budget import ExportBudget
from services.figures import FigureBook
from services.health import GETCOURSE, SALEBOT, CallTracker, ServiceStatus
from services.link_store import LinkStore, SalebotAfterRemoval
from services.linking import Linked, NotFound
from services.models import GetCourseUser, Link, salebot_variables
from services.storage.audit import AuditAction, AuditEntry, AuditRepository
from services.storage.bridge import (
    CallbackRepository,
    EventRepository,
    FieldWrite,
    FieldWriteRepository,
    GetCourseEvent,
)
from services.storage.console import ConsoleQueries
from services.storage.database import Database
from services.storage.deliveries import Delivery, DeliveryRepository
from services.storage.directory import DirectoryRepository, DoneRun, SyncRun
from services.storage.link_events import LinkEvent, LinkEventKind, LinkEventRepository
from services.storage.links import LinkRepository
from services.storage.outbox import OutboxRepository
from services.storage.ownership_proofs import ProofRepository
from services.storage.profiles import ProfileRepository, TelegramProfile
from services.storage.queued_lookups import QueuedLookupRepository
from services.supervision import LoopStatus, Supervisor

log = logging.getLogger(__name__)

DAY = 24 * 3600.0
MAX_CARDS = 5
HISTORY_LENGTH = 15
CARD_EVENTS = 3  # the person's latest GetCourse events on their card
CHART_DAYS = 30
USERNAME = re.compile(r"@?([A-Za-z0-9_]{3,32})")
# A spreadsheet runs a cell that starts like a formula; such text is exported with a quote.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = (
    "telegram_id",
    "telegram_username",
    "telegram_first_name",
    "email",
    "gc_user_id",
    "gc_name",
    "salebot_client_id",
    "linked_at",
    "updated_at",
    "linked_by_operator",
    "salebot_write",
    "salebot_write_at",
    "salebot_last_error",
)


class InvalidQuery(ServiceError):
    """The text is neither an email, a number nor a Telegram username."""


@dataclass(frozen=True)
class Deployment:
    """What this instance runs as: its version and its settings without secrets."""

    version: str
    mode: str
    settings: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class PersonCard:
    telegram_id: int
    profile: TelegramProfile | None
    link: Link | None
    delivery: Delivery | None  # the latest Salebot write for this person
    linked_by: TelegramProfile | None  # the profile of the operator who made the link
    # The directory's copy of the linked GetCourse user (its status among others); None when
    # not linked or not in the directory.
    gc_user: GetCourseUser | None
    field_write: FieldWrite | None = None  # the latest GetCourse field write for this person
    events: tuple[GetCourseEvent, ...] = ()  # their latest GetCourse events, newest first


@dataclass(frozen=True)
class FindResult:
    cards: list[PersonCard]
    total: int  # matches in all; only the first MAX_CARDS have cards


@dataclass(frozen=True)
class LinkProposal:
    """What an operator's /link would do, shown before they confirm it."""

    telegram_id: int
    user: GetCourseUser
    current: Link | None
    holders: list[int]  # other Telegram accounts linked to this email or GetCourse user


@dataclass(frozen=True)
class Unlinked:
    link: Link
    variables_cleared: bool


@dataclass(frozen=True)
class LinkChanged:
    """The link is no longer the one the operator's confirmation was shown for (``None``: no
    link any more): nothing was done."""

    link: Link | None


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
class CsvExport:
    content: bytes
    rows: int


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


HistoryEntry = LinkEvent | Delivery


class OperatorConsole:
    def __init__(
        self,
        database: Database,
        directory: UserDirectory,
        sync: DirectorySync,
        budget: ExportBudget,
        calls: CallTracker,
        on_enqueued: Callable[[], None],
        deployment: Deployment,
        *,
        keep_variables_on_unlink: bool = False,
        supervisor: Supervisor | None = None,
        clock: Callable[[], float] = time.time,
        follow_ups: LinkFollowUps | None = None,
    ) -> None:
        self._database = database
        self._store_unit = LinkStore(follow_ups)
        self._directory = directory
        self._sync = sync
        self._budget = budget
        self._calls = calls
        self._on_enqueued = on_enqueued
        self._deployment = deployment
        self._keep_variables = keep_variables_on_unlink
        self._supervisor = supervisor or Supervisor()
        self._clock = clock
        self._started_at = clock()
        self._links = LinkRepository(database)
        self._gc_users = DirectoryRepository(database)
        self._profiles = ProfileRepository(database)
        self._deliveries = DeliveryRepository(database)
        self._events = LinkEventRepository(database)
        self._audit = AuditRepository(database)
        self._queries = ConsoleQueries(database)
        self._gc_directory = DirectoryRepository(database)
        self._queued = QueuedLookupRepository(database)
        self._field_writes = FieldWriteRepository(database)
        self._callbacks = CallbackRepository(database)
        self._gc_events = EventRepository(database)
        self._figures = FigureBook(database, budget)

    @property
    def keeps_variables_on_unlink(self) -> bool:
        return self._keep_variables

    # -- looking people up ------------------------------------------------------------------

    async def find(self, query: str) -> FindResult:
        """By email, Telegram ID, @username, GetCourse ID or Salebot client ID."""
        text = query.strip()
        if text.isdigit():
            ids = await self._queries.ids_by_number(int(text))
        elif "@" in text.lstrip("@"):
            try:
                ids = await self._queries.ids_by_email(normalize_email(text))
            except InvalidEmail as error:
                raise InvalidQuery(str(error)) from error
        elif match := USERNAME.fullmatch(text):
            ids = await self._profiles.ids_by_username(match.group(1))
        else:
            raise InvalidQuery("not an email, a number or a username")
        cards = [await self.card(telegram_id) for telegram_id in ids[:MAX_CARDS]]
        return FindResult(cards, len(ids))

    async def card(self, telegram_id: int) -> PersonCard:
        link = await self._links.get(telegram_id)
        operator = link.linked_by if link else None
        return PersonCard(
            telegram_id=telegram_id,
            profile=await self._profiles.get(telegram_id),
            link=link,
            delivery=await self._deliveries.latest_for(telegram_id),
            linked_by=await self._profiles.get(operator) if operator is not None else None,
            gc_user=await self._gc_users.by_id(link.gc_user_id) if link else None,
            field_write=await self._field_writes.latest_for(telegram_id),
            events=tuple(await self._gc_events.latest_for(telegram_id, CARD_EVENTS)),
        )

    async def history(self, telegram_id: int) -> list[HistoryEntry]:
        """The person's latest link events and Salebot writes, oldest first."""
        events: list[HistoryEntry] = [
            *await self._events.for_person(telegram_id, HISTORY_LENGTH),
            *await self._deliveries.history_for(telegram_id, HISTORY_LENGTH),
        ]
        # A link event and the write it queued share a moment: the event reads first.
        events.sort(key=lambda entry: (_when(entry), isinstance(entry, Delivery)))
        return events[-HISTORY_LENGTH:]

    # -- changing links ---------------------------------------------------------------------

    async def propose_link(self, telegram_id: int, text: str) -> LinkProposal | NotFound:
        """Look the email up on GetCourse (raises ``InvalidEmail``, ``GetCourseError``)."""
        email = normalize_email(text)
        user = await self._directory.find_user_by_email(email)
        if user is None:
            return NotFound(email)
        return LinkProposal(
            telegram_id=telegram_id,
            user=user,
            current=await self._links.get(telegram_id),
            holders=await self._queries.ids_holding(user.email, user.id, besides=telegram_id),
        )

    async def link(
        self, operator_id: int, telegram_id: int, user: GetCourseUser, version: int | None = None
    ) -> Linked | LinkChanged:
        """Store the link an operator confirmed, with its Salebot write; ``LinkChanged`` when
        ``version`` (of the link replaced, 0 for none) is no longer the person's link."""
        now = self._clock()
        stamp = datetime.fromtimestamp(now, UTC)
        async with self._database.transaction() as tx:
            previous = await LinkRepository.get_in(tx, telegram_id)
            if version is not None and (previous.version if previous else 0) != version:
                return LinkChanged(previous)
            link = Link(
                telegram_id=telegram_id,
                email=user.email,
                gc_user_id=user.id,
                gc_name=user.full_name,
                salebot_client_id=previous.salebot_client_id if previous else None,
                linked_at=previous.linked_at if previous else stamp,
                updated_at=stamp,
                linked_by=operator_id,
            )
            await self._store_unit.put(tx, link, previous, now, operator_id)
            # An operator's /link is a proof in itself: a proof the person had under way is void.
            await ProofRepository.delete_in(tx, telegram_id)
            await AuditRepository.record(
                tx,
                at=now,
                operator_id=operator_id,
                action=AuditAction.LINK,
                target=str(telegram_id),
                before=_snapshot(previous),
                after=_snapshot(link),
            )
        self._on_enqueued()
        log.info(
            "operator %s linked telegram %s to getcourse user %s (%s)",
            operator_id,
            telegram_id,
            user.id,
            mask_email(user.email),
        )
        return Linked(link=link, previous=previous)

    async def unlink(
        self, operator_id: int, telegram_id: int, version: int | None = None
    ) -> Unlinked | LinkChanged | None:
        """Remove the link and, unless configured to keep them, blank our Salebot variables.
        ``None`` when the person is not linked; ``LinkChanged`` when ``version`` (the
        ``Link.version`` the operator was shown) is no longer the link's."""
        now = self._clock()
        clear = not self._keep_variables
        async with self._database.transaction() as tx:
            link = await LinkRepository.get_in(tx, telegram_id)
            if link is None:
                return None
            if version is not None and link.version != version:
                return LinkChanged(link)
            salebot = SalebotAfterRemoval.BLANK if clear else SalebotAfterRemoval.KEEP
            await self._store_unit.remove(tx, link, now, salebot, operator_id)
            await AuditRepository.record(
                tx,
                at=now,
                operator_id=operator_id,
                action=AuditAction.UNLINK,
                target=str(telegram_id),
                before=_snapshot(link),
                after={"salebot_variables": "cleared" if clear else "kept"},
            )
        self._on_enqueued()
        log.info(
            "operator %s unlinked telegram %s (%s); salebot variables %s",
            operator_id,
            telegram_id,
            mask_email(link.email),
            "cleared" if clear else "kept",
        )
        return Unlinked(link, variables_cleared=clear)

    async def resync(self, operator_id: int, telegram_id: int) -> Link | None:
        """Queue the link's variables again; ``None`` when the person is not linked."""
        now = self._clock()
        latest = await self._deliveries.latest_for(telegram_id)
        async with self._database.transaction() as tx:
            link = await LinkRepository.get_in(tx, telegram_id)
            if link is None:
                return None
            item_id = await OutboxRepository.enqueue(tx, telegram_id, salebot_variables(link), now)
            await AuditRepository.record(
                tx,
                at=now,
                operator_id=operator_id,
                action=AuditAction.RESYNC,
                target=str(telegram_id),
                before={"salebot_write": latest.state if latest else "none"},
                after={"salebot_write": "pending", "write_id": str(item_id)},
            )
        self._on_enqueued()
        log.info("operator %s resynced telegram %s (write %s)", operator_id, telegram_id, item_id)
        return link

    async def retry_all(self, operator_id: int) -> int:
        """Make every waiting Salebot write due now; returns how many. The GetCourse field
        writes and Salebot callbacks waiting are made due too (never a callback that may have
        landed)."""
        now = self._clock()
        async with self._database.transaction() as tx:
            count = await DeliveryRepository.retry_all_now(tx, now)
            await FieldWriteRepository.retry_all_now(tx, now)
            await CallbackRepository.retry_all_now(tx, now)
            await AuditRepository.record(
                tx,
                at=now,
                operator_id=operator_id,
                action=AuditAction.RETRY_ALL,
                target="salebot_writes",
                before={"waiting": str(count)},
                after={"due_now": str(count)},
            )
        self._on_enqueued()
        log.info("operator %s made %d waiting salebot writes due now", operator_id, count)
        return count

    async def record_sync(self, operator_id: int, kind: str) -> None:
        """Audit an operator's start of a directory sync (it spends export budget)."""
        async with self._database.transaction() as tx:
            await AuditRepository.record(
                tx,
                at=self._clock(),
                operator_id=operator_id,
                action=AuditAction.SYNC,
                target=f"directory_{kind}",
                before={},
                after={},
            )
        log.info("operator %s started a %s directory sync", operator_id, kind)

    # -- the whole bot ----------------------------------------------------------------------

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

    async def export_csv(self, operator_id: int, delimiter: str = ",") -> CsvExport:
        """Every link as CSV: UTF-8 with a BOM (so Excel reads it as UTF-8), ISO timestamps."""
        rows = await self._queries.export_rows()
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            writer.writerow(
                [
                    row.telegram_id,
                    _cell(row.username),
                    _cell(row.first_name),
                    _cell(row.email),
                    _cell(row.gc_user_id),
                    _cell(row.gc_name),
                    row.salebot_client_id if row.salebot_client_id is not None else "",
                    _iso(row.linked_at),
                    _iso(row.updated_at),
                    row.linked_by if row.linked_by is not None else "",
                    row.delivery_state or "",
                    _iso(row.delivery_updated_at),
                    _cell(row.delivery_error),
                ]
            )
        now = self._clock()
        async with self._database.transaction() as tx:
            await AuditRepository.record(
                tx,
                at=now,
                operator_id=operator_id,
                action=AuditAction.EXPORT,
                target="links",
                before={},
                after={"rows": str(len(rows))},
            )
        log.info("operator %s exported %d links", operator_id, len(rows))
        return CsvExport(buffer.getvalue().encode("utf-8-sig"), len(rows))

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


def _snapshot(link: Link | None) -> dict[str, str]:
    """A link as the audit keeps it."""
    if link is None:
        return {}
    snapshot = {"email": link.email, "gc_user_id": link.gc_user_id}
    if link.salebot_client_id is not None:
        snapshot["salebot_client_id"] = str(link.salebot_client_id)
    return snapshot


def _when(entry: HistoryEntry) -> datetime:
    return entry.at if isinstance(entry, LinkEvent) else entry.created_at


def _cell(value: str | None) -> str:
    if not value:
        return ""
    return "'" + value if value.startswith(FORMULA_START) else value


def _iso(stamp: str | None) -> str:
    return datetime.fromisoformat(stamp).isoformat(timespec="seconds") if stamp else ""

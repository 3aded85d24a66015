"""Filling the local GetCourse directory from users exports.

A full sync walks ``created_at`` windows from ``since`` to today, one export per window, so no
single answer is huge. Registrations are uneven (quiet years, launch weeks), so each window is
sized from the one before to hold about ``window_users`` users, at most twice as long as it and
at most a year: a school's empty early years take one export a year, not one a season, and its
busy months are split finely. An incremental sync starts at the latest registration day already
in the directory. Each run and the window it is on live in ``directory_syncs`` with the export ID
of the window in progress, so a run killed mid-way resumes there and collects the export it
already paid for. Every request goes through the shared export budget, and a run stops early (to
resume later) rather than eat the reserve kept for people waiting on a live lookup.

Once a full run has seen every window, it asks for the users of each ``BLOCKED_STATUSES`` with a
``status=`` export (a users export has no status column): those users get that status, and users
stored with it whom the answer no longer holds go back to NULL ("not known to be blocked": the
answer proves only that they are not banned, not which other status they have). Each status
export is a step of the run like a window: same budget check, its export ID saved, resumed.
Links whose user newly got such a status are flagged to the operators once, at the change.
Then users the run did not see are gone from GetCourse: they leave the directory, and links to
them are flagged to the operators (never dropped)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from services.errors import GetCourseApiError, GetCourseError
from services.export_budget import ExportBudget
from services.getcourse import GetCourseClient
from services.models import BLOCKED_STATUSES, GetCourseUser
from services.notifications import Notifier, NullNotifier, OperatorEvent, OperatorNotice
from services.storage.database import Database
from services.storage.directory import STATUS_STEP, DirectoryRepository, SyncRun
from services.storage.links import LinkRepository

log = logging.getLogger(__name__)

# An export (a window or a status) costs a start and at least one poll; a run starts one only
# with this much room left above the reserve.
REQUESTS_PER_EXPORT = 2
# How much longer than the last one a window may be, and the longest one (unless the first is
# longer): a quiet stretch followed by a busy one must not end in one huge export.
WINDOW_GROWTH = 2
LONGEST_WINDOW_DAYS = 366
# Seconds before a scheduled run that stopped early (budget, GetCourse failure) is tried again.
RESUME_AFTER = 15 * 60.0


class SyncKind(StrEnum):
    FULL = "full"
    INCREMENTAL = "incremental"


@dataclass(frozen=True)
class SyncPolicy:
    window_days: int = 90  # the first window of a run (and of a resumed one)
    since: date = date(2012, 1, 1)  # GetCourse opened its doors about then
    reserve: int = 20  # export requests a sync leaves for live lookups
    window_users: int = 50_000  # users a window aims at; 0 keeps every window at window_days


@dataclass(frozen=True)
class SyncProgress:
    kind: SyncKind
    days_done: int  # registration days read so far
    days_total: int
    rows: int
    day: str  # the last registration day read
    status: str | None = None  # the status export starting, once the windows are done


@dataclass(frozen=True)
class SyncResult:
    kind: SyncKind
    complete: bool  # False: stopped to spare the budget; the next run resumes
    rows: int
    removed: int = 0
    orphaned_links: int = 0
    blocked_links: int = 0  # links whose user this run found newly banned or deactivated


ProgressCallback = Callable[[SyncProgress], Awaitable[None]]


class DirectorySync:
    def __init__(
        self,
        database: Database,
        getcourse: GetCourseClient,
        budget: ExportBudget,
        policy: SyncPolicy,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._database = database
        self._directory = DirectoryRepository(database)
        self._links = LinkRepository(database)
        self._getcourse = getcourse
        self._budget = budget
        self._policy = policy
        self._notifier = notifier or NullNotifier()
        self._clock = clock
        self._lock = asyncio.Lock()  # one run at a time: scheduled, command line or operator
        self._background: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> bool:
        return self._lock.locked() or bool(self._background)

    def start(
        self,
        kind: SyncKind,
        progress: ProgressCallback,
        done: Callable[[SyncResult | GetCourseError], Awaitable[None]],
    ) -> bool:
        """Run in the background (an operator's ``/sync``), reporting to ``progress`` and at
        the end to ``done``; ``False`` when a run is already going."""
        if self.running:
            return False

        async def background() -> None:
            try:
                outcome: SyncResult | GetCourseError = await self.run(kind, progress)
            except GetCourseError as error:
                log.warning("directory sync %s failed: %s", kind, error)
                outcome = error
            await done(outcome)

        task = asyncio.create_task(background(), name=f"directory-sync-{kind}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return True

    async def stop(self) -> None:
        """Cut off a background run; it resumes at its saved window and export next time."""
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    async def last_done(self, kind: SyncKind) -> float | None:
        return await self._directory.last_finished(kind)

    async def run(self, kind: SyncKind, progress: ProgressCallback | None = None) -> SyncResult:
        """Raises ``GetCourseError`` when a window could not be exported; the run stays open
        and the next one resumes at that window. Waits for a run already going."""
        async with self._lock:
            return await self._run(kind, progress)

    async def _run(self, kind: SyncKind, progress: ProgressCallback | None) -> SyncResult:
        run = await self._directory.open_run(kind)
        if run is None:
            run = await self._begin(kind)
        else:
            log.info("directory sync %s resumed at %s (run %s)", kind, run.next_day, run.id)
        rows = run.rows
        export_id = run.export_id
        statuses = _statuses_from(run.next_day)
        first, last = _day(run.first_day), _day(run.last_day)
        total = (last - first).days + 1
        if statuses is None:
            day = _day(run.next_day)
            days = self._policy.window_days
            while day <= last:
                if export_id is None and not await self._budget_allows_export():
                    log.warning(
                        "directory sync %s paused at %s: export budget kept for lookups", kind, day
                    )
                    return SyncResult(kind, complete=False, rows=rows)
                window_end = day + timedelta(days=min(days, (last - day).days + 1) - 1)
                count = await self._export_window(run, day, window_end, export_id)
                log.info(
                    "directory sync %s: window %s..%s gave %d users", kind, day, window_end, count
                )
                rows += count
                days = self._next_window_days((window_end - day).days + 1, count)
                day = window_end + timedelta(days=1)
                export_id = None
                await self._directory.step_done(run.id, day.isoformat(), count)
                if progress is not None:
                    done = (window_end - first).days + 1
                    await progress(SyncProgress(kind, done, total, rows, window_end.isoformat()))
            statuses = BLOCKED_STATUSES
        blocked = 0
        if kind is SyncKind.FULL:
            for position, status in enumerate(statuses):
                if export_id is None and not await self._budget_allows_export():
                    log.warning(
                        "directory sync %s paused before the %s users: export budget kept for "
                        "lookups",
                        kind,
                        status,
                    )
                    return SyncResult(kind, complete=False, rows=rows, blocked_links=blocked)
                if progress is not None:
                    await progress(SyncProgress(kind, total, total, rows, run.last_day, status))
                blocked += await self._export_status(run, status, export_id)
                export_id = None
                if position + 1 < len(statuses):
                    await self._directory.step_done(run.id, STATUS_STEP + statuses[position + 1], 0)
        result = await self._finish(run, rows, blocked)
        log.info(
            "directory sync %s done: %d users, %d removed, %d links flagged, %d links blocked",
            kind,
            rows,
            result.removed,
            result.orphaned_links,
            result.blocked_links,
        )
        return result

    async def _begin(self, kind: SyncKind) -> SyncRun:
        today = datetime.fromtimestamp(self._clock()).date()
        first = self._policy.since
        if kind is SyncKind.INCREMENTAL:
            last_day = await self._directory.last_synced_day()
            if last_day is not None:
                # Inclusive: users who registered later on that day were not in the last export.
                first = max(first, _day(last_day))
        return await self._directory.begin_run(
            kind, first.isoformat(), today.isoformat(), self._clock()
        )

    def _next_window_days(self, days: int, users: int) -> int:
        """Days that hold about ``window_users`` users at the density the last window showed."""
        target = self._policy.window_users
        if target <= 0:
            return self._policy.window_days
        longest = min(days * WINDOW_GROWTH, max(self._policy.window_days, LONGEST_WINDOW_DAYS))
        if users == 0:
            return longest
        return max(1, min(longest, days * target // users))

    async def _budget_allows_export(self) -> bool:
        if await self._budget.paused_until() is not None:
            return False
        room = self._budget.limit - await self._budget.used()
        return room >= self._policy.reserve + REQUESTS_PER_EXPORT

    async def _export_window(
        self, run: SyncRun, first: date, last: date, export_id: int | None
    ) -> int:
        async def store(users: list[GetCourseUser]) -> None:
            await self._directory.upsert(users, self._clock())

        filters = {"created_at[from]": first.isoformat(), "created_at[to]": last.isoformat()}
        return await self._export(run, filters, export_id, store)

    async def _export_status(self, run: SyncRun, status: str, export_id: int | None) -> int:
        """The users GetCourse holds with ``status`` get it in the directory; those stored with
        it whom the answer no longer holds lose it. Returns how many links were flagged."""
        seen: set[str] = set()
        flagged = 0

        async def store(users: list[GetCourseUser]) -> None:
            nonlocal flagged
            seen.update(user.id for user in users)
            changed = await self._directory.set_status(users, status, self._clock())
            flagged += await self._flag_blocked_links(changed, status)

        count = await self._export(run, {"status": status}, export_id, store)
        cleared = await self._directory.clear_status(status, keep=seen)
        log.info("directory sync: %d users %s, %d no longer", count, status, cleared)
        return flagged

    async def _export(
        self,
        run: SyncRun,
        filters: dict[str, str],
        export_id: int | None,
        sink: Callable[[list[GetCourseUser]], Awaitable[None]],
    ) -> int:
        async def started(new_id: int) -> None:
            await self._directory.export_started(run.id, new_id)

        try:
            return await self._getcourse.export_users(
                filters, resume_export_id=export_id, on_started=started, sink=sink
            )
        except GetCourseApiError:
            if export_id is None:
                raise
            # GetCourse no longer knows the export we saved (too old): export it again.
            log.info("directory sync: export %s is gone; starting it again", export_id)
            return await self._getcourse.export_users(
                filters, resume_export_id=None, on_started=started, sink=sink
            )

    async def _finish(self, run: SyncRun, rows: int, blocked: int) -> SyncResult:
        kind = SyncKind(run.kind)
        removed: list[GetCourseUser] = []
        orphaned = 0
        if kind is SyncKind.FULL:
            removed = await self._directory.remove_unseen_since(run.started_at)
            orphaned = await self._flag_orphaned_links()
        await self._directory.finish_run(run.id, "done", self._clock())
        return SyncResult(kind, True, rows, len(removed), orphaned, blocked)

    async def _flag_blocked_links(self, gc_user_ids: list[str], status: str) -> int:
        """Links whose GetCourse user just got ``status``: told once, kept."""
        links = await self._links.linked_to(gc_user_ids)
        for link in links:
            log.warning(
                "link of telegram %s: getcourse user %s is %s",
                link.telegram_id,
                link.gc_user_id,
                status,
            )
            self._notifier.notify(
                OperatorNotice(
                    OperatorEvent.LINKED_USER_BLOCKED,
                    {
                        "telegram_id": str(link.telegram_id),
                        "gc_user_id": link.gc_user_id,
                        "status": status,
                    },
                )
            )
        return len(links)

    async def _flag_orphaned_links(self) -> int:
        """Links whose GetCourse user a complete full sync did not find: told, not dropped."""
        rows = await self._database.fetchall(
            "SELECT l.telegram_id, l.gc_user_id FROM links l "
            "LEFT JOIN gc_directory d ON d.gc_user_id = l.gc_user_id "
            "WHERE d.gc_user_id IS NULL ORDER BY l.telegram_id"
        )
        for row in rows:
            log.warning(
                "link of telegram %s: getcourse user %s no longer exists",
                row["telegram_id"],
                row["gc_user_id"],
            )
            self._notifier.notify(
                OperatorNotice(
                    OperatorEvent.LINKED_USER_GONE,
                    {"telegram_id": str(row["telegram_id"]), "gc_user_id": row["gc_user_id"]},
                )
            )
        return len(rows)


class SyncScheduler:
    """Scheduled syncs inside the running bot: incremental every ``incremental_every`` seconds
    and full every ``full_every`` (0 turns either off), counted from the last one done, so a
    restart does not repeat a sync that just ran. A failed or paused run is tried again
    ``RESUME_AFTER`` later (or its interval, if shorter); the run resumes where it stopped."""

    def __init__(
        self,
        sync: DirectorySync,
        full_every: float,
        incremental_every: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sync = sync
        self._every = {SyncKind.FULL: full_every, SyncKind.INCREMENTAL: incremental_every}
        self._clock = clock
        self._stopped = asyncio.Event()

    def stop(self) -> None:
        self._stopped.set()

    async def run(self) -> None:
        due: dict[SyncKind, float] = {}
        for kind, every in self._every.items():
            if every > 0:
                last = await self._sync.last_done(kind)
                # Never done: due now (both due alike, the full one goes first).
                due[kind] = 0.0 if last is None else last + every
        while due and not self._stopped.is_set():
            # The full sync first when both are due: it covers the recent days as well.
            kind = min(due, key=lambda k: (due[k], k is not SyncKind.FULL))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), max(0.0, due[kind] - self._clock()))
                return
            complete = False
            try:
                complete = (await self._sync.run(kind)).complete
            except GetCourseError as error:
                log.warning("scheduled directory sync %s failed: %s", kind, error)
            # A run that stopped early resumes sooner than a whole interval later.
            every = self._every[kind] if complete else min(self._every[kind], RESUME_AFTER)
            due[kind] = self._clock() + every
            if kind is SyncKind.FULL and SyncKind.INCREMENTAL in due:
                due[SyncKind.INCREMENTAL] = self._clock() + self._every[SyncKind.INCREMENTAL]


def _day(text: str) -> date:
    return date.fromisoformat(text)


def _statuses_from(next_day: str) -> tuple[str, ...] | None:
    """The status exports a run still has to do, ``None`` while it is on its windows."""
    if not next_day.startswith(STATUS_STEP):
        return None
    status = next_day.removeprefix(STATUS_STEP)
    if status not in BLOCKED_STATUSES:
        return BLOCKED_STATUSES  # saved by a version that asked about others: the whole pass
    return BLOCKED_STATUSES[BLOCKED_STATUSES.index(status) :]

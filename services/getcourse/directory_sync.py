"""Filling the local GetCourse directory from users exports.

A sync walks ``created_at`` windows NEWEST-FIRST, from today back to ``since``, one export per
window, so no single answer is huge and the people most likely to write on a school's first day
(its recent registrants) are in the directory after the first export. Registrations are uneven,
so each window is sized from the one before to hold about ``window_users`` users, at most twice
as long as it (eight times when it was sparse); once a window holds nobody, every older day is
read in one export (and so once a window's oldest days were empty where its density would have
put people, or the density seen says all older days would hold no more than two windows' worth):
empty years cost one export together, whatever ``since`` says. Each window
asks ``created_at[to]`` one day past its last day (GetCourse may treat ``to`` as exclusive; when
it does not, the day read twice costs nothing, the directory upserts). An incremental sync covers
the days since the last complete run began. Each run and the window it is on live in
``directory_syncs`` with the export ID of the window in progress, so a run killed mid-way resumes
there and collects the export it already paid for. Every request goes through the shared export
budget, and a run stops early (to resume later) rather than eat the reserve kept for people
waiting on a live lookup. The run goes a window at a time: people waiting go first (the lookup
queue), and before the first run is complete their lookups drive its windows (``advance``).

Once a full run has seen every window, it asks for the users of each ``BLOCKED_STATUSES`` with a
``status=`` export (a users export has no status column; a status GetCourse refuses with 914 is
skipped, and remembered): those users get that status, and users
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

from services.errors import GetCourseApiError, GetCourseError, GetCourseFilterRefused
from services.getcourse.budget import ExportBudget
from services.getcourse.exports import GetCourseClient
from services.models import BLOCKED_STATUSES, GetCourseUser
from services.notifications import Notifier, NullNotifier, OperatorEvent, OperatorNotice
from services.storage.database import Database
from services.storage.directory import CREATED_COLUMN, STATUS_STEP, DirectoryRepository, SyncRun
from services.storage.getcourse_quirks import STATUS_FILTER, QuirkRepository
from services.storage.links import LinkRepository

log = logging.getLogger(__name__)

# An export (a window or a status) costs a start and at least one poll; a run starts one only
# with this much room left above the reserve.
REQUESTS_PER_EXPORT = 2
# How much longer than the last one a window may be: a quiet stretch followed by a busy one
# must not end in one huge export. A window with fewer than 1/SPARSE_SHARE of ``window_users``
# users says the older days are thin: the next may grow by SPARSE_GROWTH.
WINDOW_GROWTH = 2
SPARSE_GROWTH = 8
SPARSE_SHARE = 10
# A window whose oldest days held nobody where its density would have put this many users has
# reached the school's first registrations: every older day is empty (one export).
EMPTY_STRETCH_USERS = 10
# Every older day goes in one export when, at the density seen, they would hold no more than
# this many windows' worth of users.
REST_SHARE = 2
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
    day: str  # the earliest registration day read (newest-first: every later day is read)
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
# Users a window just brought in: people waiting for them are answered at once.
UsersArrived = Callable[[list[GetCourseUser]], Awaitable[None]]


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
        self._quirks = QuirkRepository(database)
        self._getcourse = getcourse
        self._budget = budget
        self._policy = policy
        self._notifier = notifier or NullNotifier()
        self._clock = clock
        self._running = asyncio.Lock()  # one run at a time: scheduled, command line or operator
        self._step_lock = asyncio.Lock()  # one step at a time: a run's, or one people drive
        self._background: set[asyncio.Task[None]] = set()
        self._blocked: dict[int, int] = {}  # run ID -> links flagged by its status steps so far
        self._users_arrived: UsersArrived | None = None
        self._lookups_first: Callable[[], Awaitable[None]] | None = None

    def serve_lookups(
        self, users_arrived: UsersArrived, lookups_first: Callable[[], Awaitable[None]]
    ) -> None:
        """Wire the lookup queue in: told of every user a window brings, and waited for before
        each window (people waiting go first)."""
        self._users_arrived = users_arrived
        self._lookups_first = lookups_first

    @property
    def running(self) -> bool:
        return self._running.locked() or bool(self._background)

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

    async def covered_until(self) -> float | None:
        """Every registration before this moment is in the directory (``None``: no run has
        read all its windows yet)."""
        return await self._directory.covered_until()

    async def run(self, kind: SyncKind, progress: ProgressCallback | None = None) -> SyncResult:
        """Raises ``GetCourseError`` when a window could not be exported; the run stays open
        and the next one resumes at that window. Waits for a run already going."""
        async with self._running:
            while True:
                if self._lookups_first is not None:
                    await self._lookups_first()
                async with self._step_lock:
                    result = await self._step(kind, progress)
                if result is not None:
                    return result

    async def advance(self) -> bool:
        """Read the next window of the first sync for people waiting on it (before any run is
        complete, only the directory's coverage can tell "not found"): no reserve is kept, the
        budget is theirs. ``False`` when every window is read already."""
        async with self._step_lock:
            run = await self._directory.open_run(SyncKind.FULL)
            run = run or await self._directory.open_run(SyncKind.INCREMENTAL)
            run = run or await self._begin(SyncKind.FULL)
            if run.windows_done:
                return False
            # The last window, after few users: it reaches today as well (re-reading them costs
            # little), so people who wrote after the run began need no export of their own.
            through_today = (
                run.window_first == run.first_day
                and run.export_id is None
                and run.rows <= self._policy.window_users
            )
            log.info("directory sync %s: next window read for lookups waiting", run.kind)
            await self._window(run, None, through_today=through_today)
            return True

    async def _step(self, kind: SyncKind, progress: ProgressCallback | None) -> SyncResult | None:
        """One window or status export of the open run (begun if none); the result once the
        run is done or paused, ``None`` while it goes on."""
        run = await self._directory.open_run(kind)
        if run is None:
            run = await self._begin(kind)
        if run.windows_done and (kind is SyncKind.INCREMENTAL or run.status_step is None):
            if kind is SyncKind.FULL:
                await self._directory.step_done(run.id, STATUS_STEP + BLOCKED_STATUSES[0], run.rows)
                return None
            return await self._finish(run, 0)
        refused = run.status_step is not None and await self._refused(run.status_step)
        if run.export_id is None and not refused and not await self._budget_allows_export():
            log.warning(
                "directory sync %s paused at %s: export budget kept for lookups",
                kind,
                run.status_step or run.next_day,
            )
            rows = await self._directory.count_synced_since(run.started_at)
            return SyncResult(kind, complete=False, rows=rows)
        if run.status_step is None:
            await self._window(run, progress)
            return None
        return await self._status(run, run.status_step, progress)

    async def _begin(self, kind: SyncKind) -> SyncRun:
        today = datetime.fromtimestamp(self._clock()).date()
        first = self._policy.since
        if kind is SyncKind.INCREMENTAL:
            covered = await self._directory.covered_until()
            if covered is not None:
                # Inclusive: users who registered later on that day were not read then.
                first = max(first, datetime.fromtimestamp(covered).date())
        window_first = max(first, today - timedelta(days=self._policy.window_days - 1))
        run = await self._directory.begin_run(
            kind, first.isoformat(), today.isoformat(), window_first.isoformat(), self._clock()
        )
        log.info(
            "directory sync %s begun: %s..%s, newest first (run %s)", kind, first, today, run.id
        )
        return run

    async def _window(
        self, run: SyncRun, progress: ProgressCallback | None, *, through_today: bool = False
    ) -> None:
        first, last = _day(run.window_first), _day(run.next_day)
        covered_at, read_to = None, last
        if through_today:
            covered_at = self._clock()  # every registration before the export starts is in it
            read_to = max(last, datetime.fromtimestamp(covered_at).date())
        count, earliest = await self._export_window(run, first, read_to, run.export_id)
        rows = await self._directory.count_synced_since(run.started_at)
        log.info("directory sync %s: window %s..%s gave %d users", run.kind, first, read_to, count)
        older = first - timedelta(days=1)
        next_first = next_window_first(
            self._policy, first, last, count, _day(run.first_day), earliest
        )
        await self._directory.step_done(
            run.id, older.isoformat(), rows, next_first.isoformat(), covered_at
        )
        if progress is not None:
            done = (_day(run.last_day) - first).days + 1
            total = (_day(run.last_day) - _day(run.first_day)).days + 1
            await progress(SyncProgress(SyncKind(run.kind), done, total, rows, first.isoformat()))

    async def _status(
        self, run: SyncRun, status: str, progress: ProgressCallback | None
    ) -> SyncResult | None:
        if status in BLOCKED_STATUSES:
            position = BLOCKED_STATUSES.index(status)
        else:
            position, status = 0, BLOCKED_STATUSES[0]  # saved by a version asking another
        blocked = 0
        if not await self._refused(status):
            if progress is not None:
                total = (_day(run.last_day) - _day(run.first_day)).days + 1
                await progress(
                    SyncProgress(SyncKind(run.kind), total, total, run.rows, run.first_day, status)
                )
            try:
                blocked = await self._export_status(run, status, run.export_id)
            except GetCourseFilterRefused:
                log.warning("getcourse refuses status=%s (914): that step is skipped", status)
                await self._quirks.learned(STATUS_FILTER + status, "refused", self._clock())
        if position + 1 < len(BLOCKED_STATUSES):
            await self._directory.step_done(
                run.id, STATUS_STEP + BLOCKED_STATUSES[position + 1], run.rows
            )
            self._blocked[run.id] = self._blocked.get(run.id, 0) + blocked
            return None
        return await self._finish(run, self._blocked.pop(run.id, 0) + blocked)

    async def _refused(self, status: str) -> bool:
        """GetCourse was seen to refuse this status (914): its step asks nothing."""
        return await self._quirks.get(STATUS_FILTER + status) is not None

    async def _budget_allows_export(self) -> bool:
        if await self._budget.paused_until() is not None:
            return False
        room = self._budget.limit - await self._budget.used()
        return room >= self._policy.reserve + REQUESTS_PER_EXPORT

    async def _export_window(
        self, run: SyncRun, first: date, last: date, export_id: int | None
    ) -> tuple[int, date | None]:
        """The users the window held, and the earliest registration day among them (when the
        export names it)."""
        earliest: date | None = None

        async def store(users: list[GetCourseUser]) -> None:
            nonlocal earliest
            await self._directory.upsert(users, self._clock())
            for day in filter(None, map(_registered, users)):
                earliest = day if earliest is None else min(earliest, day)
            if self._users_arrived is not None:
                await self._users_arrived(users)

        # "to" one day past the window: read either way GetCourse takes it (inclusive or not).
        filters = {
            "created_at[from]": first.isoformat(),
            "created_at[to]": (last + timedelta(days=1)).isoformat(),
        }
        return await self._export(run, filters, export_id, store), earliest

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

    async def _finish(self, run: SyncRun, blocked: int) -> SyncResult:
        kind = SyncKind(run.kind)
        removed: list[GetCourseUser] = []
        orphaned = 0
        if kind is SyncKind.FULL:
            removed = await self._directory.remove_unseen_since(run.started_at)
            orphaned = await self._flag_orphaned_links()
        rows = await self._directory.count_synced_since(run.started_at)
        await self._directory.finish_run(run.id, "done", self._clock())
        result = SyncResult(kind, True, rows, len(removed), orphaned, blocked)
        log.info(
            "directory sync %s done: %d users, %d removed, %d links flagged, %d links blocked",
            kind,
            rows,
            result.removed,
            result.orphaned_links,
            result.blocked_links,
        )
        return result

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


def next_window_first(
    policy: SyncPolicy,
    first: date,
    last: date,
    users: int,
    run_first: date,
    earliest: date | None = None,
) -> date:
    """The first day of the window after ``first..last`` (older, ending the day before
    ``first``), which held ``users`` registered from ``earliest`` on: sized to hold about
    ``window_users`` users at that density."""
    end = first - timedelta(days=1)
    target = policy.window_users
    days = (last - first).days + 1
    if target <= 0:
        size = policy.window_days
    elif users == 0:
        return run_first  # nobody registered then: every older day in one export
    elif earliest is not None and users * (earliest - first).days >= EMPTY_STRETCH_USERS * days:
        # Its oldest days held nobody where this density would have put many: the school's
        # first registrations are in it, and every older day (empty) goes in one export.
        return run_first
    elif users * ((end - run_first).days + 1) <= REST_SHARE * target * days:
        return run_first  # at this density every older day fits in about one window
    else:
        growth = SPARSE_GROWTH if users * SPARSE_SHARE < target else WINDOW_GROWTH
        size = max(1, min(days * growth, days * target // users))
    return max(run_first, end - timedelta(days=size - 1))


def _registered(user: GetCourseUser) -> date | None:
    """The registration day of an exported user (GetCourse's "Создан" column), if given."""
    try:
        return date.fromisoformat(user.custom_fields.get(CREATED_COLUMN, "")[:10])
    except ValueError:
        return None


def _day(text: str) -> date:
    return date.fromisoformat(text)

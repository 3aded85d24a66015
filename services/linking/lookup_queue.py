"""Lookups the directory could not answer, answered by coalesced exports and told later.

Each queued lookup is a row (``queued_lookups``), so a restart keeps it. The worker waits until
the oldest lookup has gathered company for ``gather_seconds`` (a lone lookup on a quiet bot, with
no export of ours in that time, goes at once) and the pace allows an export, then answers
everyone waiting at that moment with one export (``CoalescedExports``), records each answer and
hands it over: to the person's handler when it is still waiting for it (the answer then comes in
the same dialog turn), otherwise to ``deliver``, which writes to the person however much later
it is. An answer is kept until it has been delivered. Users arriving from any export (a sync
window too: ``users_arrived``) answer the people waiting for them at once, batch by batch.

Lookups go before sync windows: a sync waits (``settled``) while a lookup export is due.

Pacing: while the bot has spent less than half its export budget in the rolling 2 hours
(``GETCOURSE_PACE_FREE_SHARE``), lookups are not held back at all. Past that, lookup exports
spend the budget no faster than it refills, one request ahead; under a launch-day load one
export every few minutes answers everyone who wrote meanwhile, instead of one export per email
draining the school's budget."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from services.email import mask_email
from services.errors import (
    GetCourseBudgetExhausted,
    GetCourseBusy,
    GetCourseConfigError,
    GetCourseError,
    GetCourseRateLimited,
)
from services.getcourse.budget import WINDOW_SECONDS, ExportBudget
from services.getcourse.coalescing import CoalescedExports, ExportAnswer
from services.getcourse.directory import MISS, DirectoryMirror
from services.getcourse.exports import GetCourseClient
from services.linking.flow import LinkService, LookupResult
from services.models import GetCourseUser
from services.storage.queued_lookups import QueuedLookup, QueuedLookupRepository

log = logging.getLogger(__name__)

# Tells the person, returns False when it should be tried again later.
Deliver = Callable[[QueuedLookup, LookupResult], Awaitable[bool]]

# After an export failed for a passing reason (network, 5xx, 905, slow), the next try waits
# ``retry_after`` seconds, doubling with each failure in a row up to this many times that.
MAX_RETRY_FACTOR = 10.0
DELIVERY_RETRY = 60.0
DELIVERY_GIVE_UP = 24 * 3600.0  # Telegram unreachable for a day: the answer is dropped
# Answers written to Telegram at once: one export answers hundreds on a launch day, and one at a
# time each waits a round trip; a few in flight stay within Telegram's ~30 messages a second.
DELIVERIES_AT_ONCE = 4


class LookupPace:
    """Lookup exports spend the budget no faster than it refills: each request "costs"
    ``2 h / budget`` seconds, and the next export may start once all but one request of the
    earlier ones are paid off (so after a quiet spell an export starts at once). While less than
    ``free_share`` of the budget is spent in the window (``used``), nothing is held back, and
    what is spent then is not owed afterwards: only requests past the free share are paid off,
    so crossing it spreads the rest of the budget instead of stopping lookups for an hour."""

    def __init__(
        self, budget: int, window_seconds: float = WINDOW_SECONDS, free_share: float = 0.5
    ) -> None:
        self.seconds_per_request = window_seconds / budget
        self._free_below = budget * free_share
        self._paid_until = 0.0

    def ready_at(self, used: int | None = None) -> float:
        if used is not None and used < self._free_below:
            return 0.0
        return self._paid_until - self.seconds_per_request

    def spent(self, requests: int, at: float, used: int | None = None) -> None:
        """``requests`` sent by an export started ``at``; ``used``: the window's count with
        them (unknown: all of them are owed)."""
        owed = requests if used is None else min(requests, max(0, int(used - self._free_below)))
        self._paid_until = max(self._paid_until, at) + owed * self.seconds_per_request


class LookupQueue:
    def __init__(
        self,
        repository: QueuedLookupRepository,
        directory: DirectoryMirror,
        exports: CoalescedExports,
        getcourse: GetCourseClient,
        links: LinkService,
        *,
        gather_seconds: float,
        patience_seconds: float,
        retry_after: float,
        pace: LookupPace | None,
        budget: ExportBudget | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._repository = repository
        self._directory = directory
        self._exports = exports
        self._getcourse = getcourse
        self._links = links
        self._gather = gather_seconds
        self._patience = patience_seconds
        self._retry_after = retry_after
        self.pace = pace  # public so a benchmark can scale its time down
        self._budget = budget  # how much is spent: below half, the pace holds nothing back
        self._clock = clock
        self._wake = asyncio.Event()
        self._passed = asyncio.Event()  # a pass of the worker ended: a sync may look again
        self._last_export_at = float("-inf")
        self._deliver_to: Deliver | None = None  # the worker's, once it runs
        self._deliveries: set[asyncio.Task[None]] = set()
        self._in_flight: set[int] = set()  # lookup IDs being written to right now
        self._claims: dict[int, asyncio.Future[LookupResult]] = {}  # lookup_id -> its handler
        self._retry_at = 0.0
        self._failures = 0

    def wake(self) -> None:
        self._wake.set()

    def claim(self, lookup_id: int) -> asyncio.Future[LookupResult]:
        """The handler that queued this lookup waits for its answer on this future."""
        future: asyncio.Future[LookupResult] = asyncio.get_running_loop().create_future()
        self._claims[lookup_id] = future
        return future

    def release(self, lookup_id: int) -> None:
        """The handler stopped waiting: a later answer goes to ``deliver`` instead."""
        future = self._claims.pop(lookup_id, None)
        if future is not None:
            future.cancel()

    async def waiting(self) -> int:
        return await self._repository.count_waiting()

    async def settled(self) -> None:
        """Returns once no queued lookup is due for an export within the gather window: a sync
        window waits for people (they always go first). At once when the worker is not running
        (``python -m bot sync``): nobody would answer them."""
        while self._deliver_to is not None:
            start_at = await self._next_export_at()
            if start_at is None or start_at > self._clock() + self._gather:
                return
            self._passed.clear()
            # Re-checked every few seconds too, should a pass end unnoticed.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._passed.wait(), max(self._gather, 1.0))

    async def users_arrived(self, users: list[GetCourseUser]) -> None:
        """Users an export just brought in: whoever waits for one of them is answered now (the
        worker delivers what their handler does not)."""
        by_email = {user.email.strip().lower(): user for user in users}
        told: list[tuple[QueuedLookup, LookupResult]] = []
        for lookup in await self._repository.waiting():
            user = by_email.get(lookup.email)  # both normalised: trimmed, lower-cased
            if user is not None:
                result = await self._conclude(lookup, user)
                if result is not None:
                    told.append((lookup, result))
        if not told:
            return
        if self._deliver_to is None:
            self.wake()  # recorded: the worker delivers them once it runs
            return
        # Aside, so the export's rows keep streaming in while people are written to.
        task = asyncio.create_task(self._deliver_all(told, self._deliver_to))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def run(self, deliver: Deliver) -> None:
        self._deliver_to = deliver
        try:
            await self._work(deliver)
        finally:
            self._deliver_to = None

    async def _work(self, deliver: Deliver) -> None:
        while True:
            self._wake.clear()
            await self._deliver_due(deliver)
            start_at = await self._next_export_at()
            now = self._clock()
            if start_at is not None and start_at <= now:
                try:
                    await self._answer_waiting(deliver)
                finally:
                    self._passed.set()
                continue
            self._passed.set()
            wake_at = min(
                (t for t in (start_at, await self._repository.next_delivery_at()) if t is not None),
                default=None,
            )
            timeout = None if wake_at is None else max(0.0, wake_at - now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _next_export_at(self) -> float | None:
        oldest = await self._repository.oldest_waiting_since()
        if oldest is None:
            return None
        gathered = oldest + self._gather
        if await self._alone_on_a_quiet_bot(oldest):
            gathered = oldest  # nobody to wait for
        start_at = max(gathered, self._retry_at)
        if self.pace is not None:
            start_at = max(start_at, self.pace.ready_at(await self._budget_used()))
        return start_at

    async def _budget_used(self) -> int | None:
        """Export-API requests in the ledger's window, for the pace (``None``: not known)."""
        return None if self._budget is None else await self._budget.used()

    async def _alone_on_a_quiet_bot(self, oldest: float) -> bool:
        """One lookup waiting, no export of the queue and nobody else asking about an email in
        the gather window before it. While people keep writing, a lone miss waits the window:
        the next unknown email shares its export (found ones are hits and cost nothing)."""
        if oldest - self._last_export_at <= self._gather:
            return False
        if await self._repository.count_waiting() != 1:
            return False
        return await self._links.lookups_since(oldest - self._gather) <= 1

    async def _answer_waiting(self, deliver: Deliver) -> None:
        # Wait out an export in flight (a sync window may answer them) before taking the list:
        # whoever queues meanwhile joins this pass's export instead of paying for the next one.
        await self._getcourse.export_slot_free()
        waiting = await self._repository.waiting()
        answers: dict[str, ExportAnswer] = {}
        unknown: dict[str, float] = {}
        for lookup in waiting:
            local = await self._directory.local_answer(lookup.email)  # a sync may know them
            if local is MISS:
                unknown[lookup.email] = max(unknown.get(lookup.email, 0.0), lookup.queued_at)
            else:
                answers[lookup.email] = local
        if unknown:
            answers.update(await self._export(unknown))
        now = self._clock()
        retry: float | None = None
        told: list[tuple[QueuedLookup, LookupResult]] = []
        for lookup in waiting:
            answer = answers[lookup.email]
            if answer is MISS:
                if lookup.queued_at + self._patience > now:
                    continue  # more of the first sync tells: the next export goes on with it
                answer = GetCourseBusy("the directory is still being read")
            if isinstance(answer, GetCourseError):
                delay = self._retry_delay(answer)
                if delay is not None and lookup.queued_at + self._patience > now + delay:
                    retry = delay if retry is None else min(retry, delay)
                    continue  # stays queued for the next export
            result = await self._conclude(lookup, answer)
            if result is not None:
                told.append((lookup, result))
        await self._deliver_all(told, deliver)
        if retry is not None:
            self._retry_at = now + retry
            log.info("queued lookups: next export attempt in %.0fs", retry)

    async def _export(self, asked_at: dict[str, float]) -> dict[str, ExportAnswer]:
        sent_before = self._getcourse.requests_sent
        started = self._last_export_at = self._clock()
        try:
            answers = await self._exports.answer(asked_at, self.users_arrived)
        finally:
            if self.pace is not None:
                sent = self._getcourse.requests_sent - sent_before
                self.pace.spent(sent, started, await self._budget_used())
        failed = any(isinstance(answer, GetCourseError) for answer in answers.values())
        self._failures = self._failures + 1 if failed else 0
        for email, answer in answers.items():
            if answer is not MISS and not isinstance(answer, GetCourseError):
                await self._directory.remember(email, answer)
        return answers

    def _retry_delay(self, error: GetCourseError) -> float | None:
        """How long until an export may succeed; ``None`` when waiting will not help soon."""
        if isinstance(error, GetCourseConfigError | GetCourseRateLimited):
            return None  # fixed by a person, or GetCourse's own 2-hour window
        if isinstance(error, GetCourseBudgetExhausted):
            return error.retry_after
        factor = min(2.0 ** max(self._failures - 1, 0), MAX_RETRY_FACTOR)
        return self._retry_after * factor

    async def _conclude(
        self, lookup: QueuedLookup, answer: GetCourseUser | GetCourseError | None
    ) -> LookupResult | None:
        """Record the answer (so a restart still delivers it); the result when it is still to
        be written to the person, ``None`` when their handler answers it or it is void."""
        result = await self._links.conclude(lookup, answer)
        if result is None:
            return None  # replaced by a newer email or cancelled meanwhile
        waiter = self._claims.pop(lookup.lookup_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(result)  # its handler answers in the dialog
            await self._repository.remove(lookup.lookup_id)
            return None
        return result

    async def _deliver_due(self, deliver: Deliver) -> None:
        due = await self._repository.answered_due(self._clock())
        await self._deliver_all(
            [(lookup, LookupResult(lookup.result)) for lookup in due if lookup.result], deliver
        )

    async def _deliver_all(
        self, answers: list[tuple[QueuedLookup, LookupResult]], deliver: Deliver
    ) -> None:
        gate = asyncio.Semaphore(DELIVERIES_AT_ONCE)

        async def one(lookup: QueuedLookup, result: LookupResult) -> None:
            try:
                async with gate:
                    await self._deliver(lookup, result, deliver)
            finally:
                self._in_flight.discard(lookup.lookup_id)

        # One writer per answer: an answer delivered aside is not picked up again meanwhile.
        answers = [(lookup, r) for lookup, r in answers if lookup.lookup_id not in self._in_flight]
        self._in_flight.update(lookup.lookup_id for lookup, _ in answers)
        await asyncio.gather(*(one(lookup, result) for lookup, result in answers))

    async def _deliver(self, lookup: QueuedLookup, result: LookupResult, deliver: Deliver) -> None:
        try:
            delivered = await deliver(lookup, result)
        except Exception:  # a delivery bug must not stop the queue; the answer stays kept
            log.exception("telling telegram %s about %s failed", lookup.telegram_id, result)
            delivered = False
        if not delivered and self._clock() - lookup.queued_at > DELIVERY_GIVE_UP:
            log.warning(
                "answer for telegram %s dropped: undeliverable for a day", lookup.telegram_id
            )
            delivered = True
        if delivered:
            await self._repository.remove(lookup.lookup_id)
            log.info(
                "queued lookup for telegram %s (%s) answered: %s",
                lookup.telegram_id,
                mask_email(lookup.email),
                result,
            )
        else:
            await self._repository.delivery_failed(lookup.lookup_id, self._clock() + DELIVERY_RETRY)

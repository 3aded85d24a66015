"""Directory misses answered by live exports, coalesced: everyone waiting at the same moment is
answered by one export, never one export each (``services.linking.lookup_queue`` decides the
moment).

What an export can prove depends on what the directory already covers
(``DirectorySync.covered_until``: every registration before that moment is in it):
- one email waiting and GetCourse filters by email → a users export with the ``email`` filter:
  found or "not found", whatever the directory holds;
- no sync has read all its windows yet (a fresh install) → the next window of the first sync,
  newest-first: the recent registrants, who are the likeliest to write, come first, and each
  further export widens to older ones. Those found are answered as the rows arrive; the others
  wait for the next window, and are "not found" once every window is read;
- otherwise → one export of the registrations since the coverage began, written into the
  directory; whoever it does not hold is "not found". A person queued before the coverage
  began and missing from the directory is "not found" with no export at all.
Users arriving from any export go to ``found`` batch by batch, so a person is answered as soon as
the rows holding them are read, not when the export is done."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from services.errors import GetCourseError, GetCourseFilterRefused, GetCourseNotCoveredYet
from services.getcourse.directory import MISS, Miss
from services.getcourse.directory_sync import DirectorySync, UsersArrived
from services.getcourse.exports import GetCourseClient
from services.models import GetCourseUser
from services.storage.directory import DirectoryRepository

log = logging.getLogger(__name__)

# ``MISS``: not known yet (only more of the first sync can tell); ask again.
ExportAnswer = GetCourseUser | GetCourseError | None | Miss


class CoalescedExports:
    """Answers a batch of emails the local directory missed with as few exports as it can."""

    def __init__(
        self,
        getcourse: GetCourseClient,
        repository: DirectoryRepository,
        sync: DirectorySync,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._getcourse = getcourse
        self._repository = repository
        self._sync = sync
        self._clock = clock
        # Start of our own last export of recent registrations: it extends the sync's coverage.
        self._recent_read_at: float | None = None

    async def answer(
        self, asked_at: dict[str, float], found: UsersArrived
    ) -> dict[str, ExportAnswer]:
        """Each email's answer; ``asked_at`` holds when each was queued (the latest, when
        several people asked the same one): only an export started after it can say "not
        found" about someone who may have registered a moment before writing."""
        emails = sorted(asked_at)
        # A sync window in progress may hold them: wait for it, then look again.
        await self._getcourse.export_slot_free()
        answers = await self._from_directory(emails, asked_at, await self._covered_until())
        asked_at = {email: asked_at[email] for email in emails if answers[email] is MISS}
        if not asked_at:
            return answers
        return {**answers, **await self._export(asked_at, found)}

    async def find_user_by_email(self, email: str) -> GetCourseUser | None:
        """One email, for someone who waits for the answer (an operator): answered the way a
        queued batch of one is, so a GetCourse that cannot filter by email is still asked."""
        answer = (await self.answer({email: self._clock()}, _nobody_waits))[email]
        if isinstance(answer, GetCourseError):
            raise answer
        if answer is MISS:
            raise GetCourseNotCoveredYet("the first sync has not read far enough back yet")
        return answer

    async def _export(
        self, asked_at: dict[str, float], found: UsersArrived
    ) -> dict[str, ExportAnswer]:
        """Those the directory cannot answer: asked after its coverage began, or before any."""
        emails = sorted(asked_at)
        if len(emails) == 1 and await self._getcourse.email_filter_works():
            try:
                return {emails[0]: await self._getcourse.find_user_by_email(emails[0])}
            except GetCourseFilterRefused:
                pass  # learned just now: a window export answers instead
            except GetCourseError as error:
                return {emails[0]: error}
        covered = await self._covered_until()
        try:
            if covered is None:
                await self._sync.advance()
            else:
                await self._read_recent(covered, len(emails), found)
        except GetCourseError as error:
            return dict.fromkeys(emails, error)
        return await self._from_directory(emails, asked_at, await self._covered_until())

    async def _from_directory(
        self, emails: list[str], asked_at: dict[str, float], covered: float | None
    ) -> dict[str, ExportAnswer]:
        answers: dict[str, ExportAnswer] = {}
        for email in emails:
            user = await self._repository.by_email(email)
            if user is not None:
                answers[email] = user
            elif covered is not None and asked_at[email] < covered:
                answers[email] = None  # the directory held everyone registered before they asked
            else:
                answers[email] = MISS
        return answers

    async def _covered_until(self) -> float | None:
        covered = await self._sync.covered_until()
        if covered is None or self._recent_read_at is None:
            return covered
        return max(covered, self._recent_read_at)

    async def _read_recent(self, covered: float, waiting: int, found: UsersArrived) -> None:
        """One export of the registrations since ``covered`` began (its whole day, and one day
        past today: GetCourse may take ``created_at[to]`` as exclusive)."""
        since = datetime.fromtimestamp(covered).date().isoformat()
        now = self._clock()
        tomorrow = (datetime.fromtimestamp(now).date() + timedelta(days=1)).isoformat()
        log.info("%d lookups waiting: one export of registrations since %s", waiting, since)

        async def store(users: list[GetCourseUser]) -> None:
            await self._repository.upsert(users, self._clock())
            await found(users)

        async def started(export_id: int) -> None:
            log.info("getcourse export %s started for %d waiting lookups", export_id, waiting)

        await self._getcourse.export_users(
            {"created_at[from]": since, "created_at[to]": tomorrow},
            resume_export_id=None,
            on_started=started,
            sink=store,
        )
        self._recent_read_at = now


async def _nobody_waits(users: list[GetCourseUser]) -> None:
    """The rows of an export nobody queued is waiting for (they are in the directory)."""

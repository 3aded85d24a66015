"""Directory misses answered by live exports, coalesced: everyone waiting at the same moment is
answered by one export, never one export each (``services.lookup_queue`` decides the moment):
- one email waiting → a users export with the ``email`` filter;
- several waiting → one export of the registrations since the latest day already in the local
  directory (a directory miss is, after a sync, someone who registered since), written into the
  directory; whoever it does not hold is "not found";
- several waiting but the directory never synced → no window can be trusted to hold them, so
  they are asked one export each (the plain strategy) until a sync has run."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from services.errors import GetCourseError
from services.getcourse import GetCourseClient
from services.models import GetCourseUser
from services.storage.directory import DirectoryRepository

log = logging.getLogger(__name__)

ExportAnswer = GetCourseUser | GetCourseError | None


class CoalescedExports:
    """Answers a batch of emails the local directory missed with as few exports as it can."""

    def __init__(
        self,
        getcourse: GetCourseClient,
        repository: DirectoryRepository,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._getcourse = getcourse
        self._repository = repository
        self._clock = clock

    async def answer(self, emails: list[str]) -> dict[str, ExportAnswer]:
        """Each email's user, ``None`` (not in GetCourse) or the error that stopped its export."""
        emails = sorted(set(emails))
        since = await self._repository.last_synced_day()
        if len(emails) == 1 or since is None:
            answers: dict[str, ExportAnswer] = {}
            for email in emails:
                try:
                    answers[email] = await self._getcourse.find_user_by_email(email)
                except GetCourseError as error:
                    answers[email] = error
            return answers
        today = datetime.fromtimestamp(self._clock()).date().isoformat()
        log.info(
            "%d lookups waiting: one export of registrations %s..%s", len(emails), since, today
        )

        async def store(users: list[GetCourseUser]) -> None:
            await self._repository.upsert(users, self._clock())

        async def started(export_id: int) -> None:
            log.info("getcourse export %s started for %d waiting lookups", export_id, len(emails))

        try:
            await self._getcourse.export_users(
                {"created_at[from]": since, "created_at[to]": today},
                resume_export_id=None,
                on_started=started,
                sink=store,
            )
        except GetCourseError as error:
            return dict.fromkeys(emails, error)
        return {email: await self._repository.by_email(email) for email in emails}

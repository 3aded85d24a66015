"""Directory misses answered by live exports, coalesced: everyone waiting at the same moment is
answered by one export, never one export each.

Misses gather for ``gather_seconds`` (and for as long as the export before them runs). Then:
- one email waiting → a users export with the ``email`` filter;
- several waiting → one export of the registrations since the latest day already in the local
  directory (a directory miss is, after a sync, someone who registered since), written into the
  directory; whoever it does not hold is "not found";
- several waiting but the directory never synced → no window can be trusted to hold them, so
  they are asked one export each (the plain strategy) until a sync has run."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime

from services.errors import GetCourseError
from services.getcourse import GetCourseClient
from services.models import GetCourseUser
from services.storage.directory import DirectoryRepository

log = logging.getLogger(__name__)


class CoalescedExports:
    """``UserDirectory`` over live exports, for the misses of the local directory."""

    def __init__(
        self,
        getcourse: GetCourseClient,
        repository: DirectoryRepository,
        gather_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._getcourse = getcourse
        self._repository = repository
        self._gather = gather_seconds
        self._clock = clock
        self._waiting: dict[str, list[asyncio.Future[GetCourseUser | None]]] = {}
        self._worker: asyncio.Task[None] | None = None

    async def find_user_by_email(self, email: str) -> GetCourseUser | None:
        future: asyncio.Future[GetCourseUser | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(email, []).append(future)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain(), name="coalesced-lookups")
        return await future

    async def _drain(self) -> None:
        while self._waiting:
            if self._gather > 0:
                await asyncio.sleep(self._gather)  # let the misses of this moment join
            batch, self._waiting = self._waiting, {}
            try:
                answers = await self._answer(sorted(batch))
            except Exception as error:  # whatever it is, nobody may be left waiting forever
                answers = dict.fromkeys(batch, error)
            for email, futures in batch.items():
                answer = answers.get(email)
                for future in futures:
                    if future.done():  # its person gave up meanwhile
                        continue
                    if isinstance(answer, Exception):
                        future.set_exception(answer)
                    else:
                        future.set_result(answer)

    async def _answer(self, emails: list[str]) -> dict[str, GetCourseUser | Exception | None]:
        since = await self._repository.last_synced_day()
        if len(emails) == 1 or since is None:
            answers: dict[str, GetCourseUser | Exception | None] = {}
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

        await self._getcourse.export_users(
            {"created_at[from]": since, "created_at[to]": today},
            resume_export_id=None,
            on_started=started,
            sink=store,
        )
        return {email: await self._repository.by_email(email) for email in emails}

"""The one interface every GetCourse lookup goes through, and the local mirror in front of it.

Lookup order: the mirror (a hit answers at once) → a short-lived memory of "not found" (a person
retyping the same unknown address costs nothing) → the Tech API when a key is set → otherwise
the answer is ``MISS``: only an export can tell, and the caller queues the lookup for one."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from enum import Enum
from typing import Literal, Protocol

from services.email import mask_email
from services.errors import GetCourseError
from services.models import GetCourseUser
from services.storage.directory import DirectoryRepository

log = logging.getLogger(__name__)


class Miss(Enum):
    MISS = "miss"


MISS = Miss.MISS  # neither the local copy nor a direct lookup can say: it takes an export
DirectAnswer = GetCourseUser | None | Literal[Miss.MISS]


class UserDirectory(Protocol):
    async def find_user_by_email(self, email: str) -> GetCourseUser | None:
        """The user with this (normalised) email, ``None`` when GetCourse has none.

        Raises ``GetCourseError`` when the lookup could not be completed."""
        ...


class DirectoryMirror:
    """Answers from the local copy first; users found live are written into it, so the next
    lookup of them is a hit too."""

    def __init__(
        self,
        repository: DirectoryRepository,
        direct: UserDirectory | None,
        live: UserDirectory,
        not_found_ttl: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._repository = repository
        self._direct = direct  # the Tech API: a single-user lookup costing no export budget
        self._live = live  # a users export with the email filter
        self._not_found_ttl = not_found_ttl
        self._clock = clock
        self._not_found: dict[str, float] = {}  # email -> until

    @property
    def answers_directly(self) -> bool:
        return self._direct is not None

    async def local_answer(self, email: str) -> DirectAnswer:
        """The local copy's answer, with no request to GetCourse."""
        user = await self._repository.by_email(email)
        if user is not None:
            return user
        if self._not_found.get(email, 0.0) > self._clock():
            log.info("directory: %s not found a moment ago", mask_email(email))
            return None
        return MISS

    async def direct_answer(self, email: str) -> DirectAnswer:
        """Ask the Tech API (when set); ``MISS`` when there is none or it failed, so the lookup
        falls back to an export rather than to "try later"."""
        if self._direct is None:
            return MISS
        try:
            user = await self._direct.find_user_by_email(email)
        except GetCourseError as error:
            log.warning("tech api lookup of %s failed (%s): queued", mask_email(email), error)
            return MISS
        await self.remember(email, user)
        return user

    async def find_user_by_email(self, email: str) -> GetCourseUser | None:
        """For an operator, who waits for the answer: the local copy, then GetCourse live."""
        answer = await self.local_answer(email)
        if answer is MISS:
            answer = await self.direct_answer(email)
        if answer is not MISS:
            return answer
        user = await self._live.find_user_by_email(email)
        await self.remember(email, user)
        return user

    def announced(self, users: Iterable[GetCourseUser]) -> None:
        """GetCourse announced these users (an event; they are in the local copy now): no
        memory of "not found" outlives them."""
        for user in users:
            self._not_found.pop(user.email, None)

    async def remember(self, email: str, user: GetCourseUser | None) -> None:
        """Keep what GetCourse just said: the user in the local copy, or a brief "not found"."""
        now = self._clock()
        if user is not None:
            await self._repository.upsert([user], now)
            return
        for known, until in list(self._not_found.items()):
            if until <= now:
                del self._not_found[known]
        if self._not_found_ttl > 0:
            self._not_found[email] = now + self._not_found_ttl

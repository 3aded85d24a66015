"""The one interface every GetCourse lookup goes through, and the local mirror in front of it.

Lookup order: the mirror (a hit answers at once) → the fallback directory (the Tech API when a
key is set, else a live export) → a short-lived memory of "not found", so a person retyping the
same unknown address does not cost a request each time."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from services.email import mask_email
from services.models import GetCourseUser
from services.storage.directory import DirectoryRepository

log = logging.getLogger(__name__)


class UserDirectory(Protocol):
    async def find_user_by_email(self, email: str) -> GetCourseUser | None:
        """The user with this (normalised) email, ``None`` when GetCourse has none.

        Raises ``GetCourseError`` when the lookup could not be completed."""
        ...


class DirectoryMirror:
    """``UserDirectory`` answering from the local copy first; users found live are written
    into it, so the next lookup of them is a hit too."""

    def __init__(
        self,
        repository: DirectoryRepository,
        fallback: UserDirectory,
        not_found_ttl: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._repository = repository
        self._fallback = fallback
        self._not_found_ttl = not_found_ttl
        self._clock = clock
        self._not_found: dict[str, float] = {}  # email -> until

    async def find_user_by_email(self, email: str) -> GetCourseUser | None:
        user = await self._repository.by_email(email)
        if user is not None:
            return user
        now = self._clock()
        if self._not_found.get(email, 0.0) > now:
            log.info("directory: %s not found a moment ago", mask_email(email))
            return None
        user = await self._fallback.find_user_by_email(email)
        if user is None:
            self._forget_expired(now)
            if self._not_found_ttl > 0:
                self._not_found[email] = now + self._not_found_ttl
            return None
        await self._repository.upsert([user], now)
        return user

    def _forget_expired(self, now: float) -> None:
        for email in [email for email, until in self._not_found.items() if until <= now]:
            del self._not_found[email]

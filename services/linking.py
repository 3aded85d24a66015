"""Linking a Telegram account to a GetCourse user, and queueing the Salebot write."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from services.directory import UserDirectory
from services.email import mask_email, normalize_email
from services.models import Link, salebot_variables
from services.storage.database import Database
from services.storage.links import LinkRepository
from services.storage.outbox import OutboxRepository

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Linked:
    link: Link
    previous: Link | None


@dataclass(frozen=True)
class NotFound:
    email: str


LinkOutcome = Linked | NotFound


class LinkService:
    """Raises ``InvalidEmail`` for text that is no address and ``GetCourseError`` when the
    lookup could not be completed; nothing is stored in either case."""

    def __init__(
        self,
        database: Database,
        directory: UserDirectory,
        on_enqueued: Callable[[], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._database = database
        self._links = LinkRepository(database)
        self._directory = directory
        self._on_enqueued = on_enqueued
        self._clock = clock

    async def current_link(self, telegram_id: int) -> Link | None:
        return await self._links.get(telegram_id)

    async def link(self, telegram_id: int, text: str) -> LinkOutcome:
        email = normalize_email(text)
        user = await self._directory.find_user_by_email(email)
        if user is None:
            log.info("lookup for telegram %s: %s not in GetCourse", telegram_id, mask_email(email))
            return NotFound(email)
        now = self._clock()
        stamp = datetime.fromtimestamp(now, UTC)
        async with self._database.transaction() as tx:
            previous = await LinkRepository.get_in(tx, telegram_id)
            link = Link(
                telegram_id=telegram_id,
                email=email,
                gc_user_id=user.id,
                gc_name=user.full_name,
                salebot_client_id=previous.salebot_client_id if previous else None,
                linked_at=previous.linked_at if previous else stamp,
                updated_at=stamp,
            )
            await LinkRepository.upsert(tx, link)
            await OutboxRepository.enqueue(tx, telegram_id, salebot_variables(link), now)
        self._on_enqueued()
        log.info(
            "%s telegram %s to getcourse user %s (%s)",
            "relinked" if previous else "linked",
            telegram_id,
            user.id,
            mask_email(email),
        )
        return Linked(link=link, previous=previous)

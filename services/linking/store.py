"""Storing and removing a link, with everything that goes with it in the same transaction: the
Salebot write (or the blanking of our variables), the GetCourse follow-ups (field writes, waiting
events, the linked message) and the link event. The student flow (``LinkService``), the
operators' console and a replaced link all go through here, so a link is never stored or
removed in two ways."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

import aiosqlite

from services.linking.bridge import LinkFollowUps
from services.models import GetCourseUser, Link, cleared_salebot_variables, salebot_variables
from services.storage.deliveries import DeliveryRepository
from services.storage.link_events import LinkEventKind, LinkEventRepository
from services.storage.links import LinkRepository
from services.storage.outbox import OutboxRepository


class SalebotAfterRemoval(Enum):
    BLANK = "blank"  # every variable of ours emptied (an unlink)
    CLEAR = "clear"  # email and GetCourse ID emptied; the Telegram ID is still true (replaced)
    KEEP = "keep"  # left as they are (SALEBOT_KEEP_VARIABLES_ON_UNLINK)


@dataclass(frozen=True)
class LinkStore:
    follow_ups: LinkFollowUps | None = None

    async def put(
        self,
        tx: aiosqlite.Connection,
        link: Link,
        previous: Link | None,
        now: float,
        operator_id: int | None = None,
    ) -> None:
        """Store ``link`` (replacing ``previous``, the person's link until now) and queue what
        both systems are to learn of it."""
        await LinkRepository.upsert(tx, link)
        await OutboxRepository.enqueue(tx, link.telegram_id, salebot_variables(link), now)
        if self.follow_ups is not None:
            await self.follow_ups.link_changed(tx, link.telegram_id, previous, link, now)
        kind = LinkEventKind.RELINKED if previous else LinkEventKind.LINKED
        await LinkEventRepository.record(tx, kind, link.telegram_id, now, operator_id)

    async def put_user(
        self,
        tx: aiosqlite.Connection,
        telegram_id: int,
        email: str,
        user: GetCourseUser,
        previous: Link | None,
        now: float,
        operator_id: int | None = None,
    ) -> Link:
        """Link ``telegram_id`` to ``user`` under ``email`` and store it as ``put`` does. The
        Salebot client and the first link time carry over from ``previous``; ``operator_id``:
        the operator who made the link."""
        stamp = datetime.fromtimestamp(now, UTC)
        link = Link(
            telegram_id=telegram_id,
            email=email,
            gc_user_id=user.id,
            gc_name=user.full_name,
            salebot_client_id=previous.salebot_client_id if previous else None,
            linked_at=previous.linked_at if previous else stamp,
            updated_at=stamp,
            linked_by=operator_id,
        )
        await self.put(tx, link, previous, now, operator_id)
        return link

    async def remove(
        self,
        tx: aiosqlite.Connection,
        link: Link,
        now: float,
        salebot: SalebotAfterRemoval,
        operator_id: int | None = None,
    ) -> None:
        """Remove ``link``: writes still waiting for it are withdrawn, Salebot is told as
        ``salebot`` says, GetCourse's fields are blanked."""
        await LinkRepository.delete_in(tx, link.telegram_id)
        await DeliveryRepository.withdraw(tx, link.telegram_id, now)
        if salebot is SalebotAfterRemoval.BLANK:
            await OutboxRepository.enqueue_blank(
                tx, link.telegram_id, now, erase_when_delivered=False
            )
        elif salebot is SalebotAfterRemoval.CLEAR:
            await OutboxRepository.enqueue(tx, link.telegram_id, cleared_salebot_variables(), now)
        if self.follow_ups is not None:
            await self.follow_ups.link_changed(tx, link.telegram_id, link, None, now)
        await LinkEventRepository.record(
            tx, LinkEventKind.UNLINKED, link.telegram_id, now, operator_id
        )

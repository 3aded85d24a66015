"""Finding a person and their link health card: the link, the latest Salebot and GetCourse
writes, the directory's copy of the GetCourse user and the latest events."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from services.email import normalize_email
from services.errors import InvalidEmail, ServiceError
from services.models import GetCourseUser, Link
from services.storage.bridge import (
    EventRepository,
    FieldWrite,
    FieldWriteRepository,
    GetCourseEvent,
)
from services.storage.console import ConsoleQueries
from services.storage.database import Database
from services.storage.deliveries import Delivery, DeliveryRepository
from services.storage.directory import DirectoryRepository
from services.storage.link_events import LinkEvent, LinkEventRepository
from services.storage.links import LinkRepository
from services.storage.profiles import ProfileRepository, TelegramProfile

MAX_CARDS = 5
HISTORY_LENGTH = 15
CARD_EVENTS = 3  # the person's latest GetCourse events on their card
USERNAME = re.compile(r"@?([A-Za-z0-9_]{3,32})")


class InvalidQuery(ServiceError):
    """The text is neither an email, a number nor a Telegram username."""


@dataclass(frozen=True)
class PersonCard:
    telegram_id: int
    profile: TelegramProfile | None
    link: Link | None
    delivery: Delivery | None  # the latest Salebot write for this person
    linked_by: TelegramProfile | None  # the profile of the operator who made the link
    # The directory's copy of the linked GetCourse user (its status among others); None when
    # not linked or not in the directory.
    gc_user: GetCourseUser | None
    field_write: FieldWrite | None = None  # the latest GetCourse field write for this person
    events: tuple[GetCourseEvent, ...] = ()  # their latest GetCourse events, newest first


@dataclass(frozen=True)
class FindResult:
    cards: list[PersonCard]
    total: int  # matches in all; only the first MAX_CARDS have cards


HistoryEntry = LinkEvent | Delivery


class PersonFinder:
    """Looks only: nothing it does is audited or changes anything."""

    def __init__(self, database: Database) -> None:
        self._queries = ConsoleQueries(database)
        self._links = LinkRepository(database)
        self._gc_users = DirectoryRepository(database)
        self._profiles = ProfileRepository(database)
        self._deliveries = DeliveryRepository(database)
        self._events = LinkEventRepository(database)
        self._field_writes = FieldWriteRepository(database)
        self._gc_events = EventRepository(database)

    async def find(self, query: str) -> FindResult:
        """By email, Telegram ID, @username, GetCourse ID or Salebot client ID."""
        text = query.strip()
        if text.isdigit():
            ids = await self._queries.ids_by_number(int(text))
        elif "@" in text.lstrip("@"):
            try:
                ids = await self._queries.ids_by_email(normalize_email(text))
            except InvalidEmail as error:
                raise InvalidQuery(str(error)) from error
        elif match := USERNAME.fullmatch(text):
            ids = await self._profiles.ids_by_username(match.group(1))
        else:
            raise InvalidQuery("not an email, a number or a username")
        cards = [await self.card(telegram_id) for telegram_id in ids[:MAX_CARDS]]
        return FindResult(cards, len(ids))

    async def card(self, telegram_id: int) -> PersonCard:
        link = await self._links.get(telegram_id)
        operator = link.linked_by if link else None
        return PersonCard(
            telegram_id=telegram_id,
            profile=await self._profiles.get(telegram_id),
            link=link,
            delivery=await self._deliveries.latest_for(telegram_id),
            linked_by=await self._profiles.get(operator) if operator is not None else None,
            gc_user=await self._gc_users.by_id(link.gc_user_id) if link else None,
            field_write=await self._field_writes.latest_for(telegram_id),
            events=tuple(await self._gc_events.latest_for(telegram_id, CARD_EVENTS)),
        )

    async def history(self, telegram_id: int) -> list[HistoryEntry]:
        """The person's latest link events and Salebot writes, oldest first."""
        events: list[HistoryEntry] = [
            *await self._events.for_person(telegram_id, HISTORY_LENGTH),
            *await self._deliveries.history_for(telegram_id, HISTORY_LENGTH),
        ]
        # A link event and the write it queued share a moment: the event reads first.
        events.sort(key=lambda entry: (_when(entry), isinstance(entry, Delivery)))
        return events[-HISTORY_LENGTH:]


def _when(entry: HistoryEntry) -> datetime:
    return entry.at if isinstance(entry, LinkEvent) else entry.created_at

"""Route-test harness: the real services and Dispatcher fed updates directly (no polling).

The Bot still talks to the Telegram stand-in over HTTP; GetCourse lookups are answered by an
in-process fake directory, so a test controls exactly who exists."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.fsm.storage.base import StorageKey
from aiogram.types import Update

from bot.app import create_bot, create_dispatcher, create_services
from services.getcourse.directory import MISS, DirectAnswer
from services.linking.flow import ConflictPolicy, LinkService
from services.linking.lookup_gate import LookupGate, LookupLimits
from services.models import GetCourseUser
from services.notifications import OperatorNotice
from services.storage.database import Database
from tests.conftest import StandIns

USER = 100000001
_update_ids = itertools.count(1)


@dataclass
class FakeDirectory:
    users: dict[str, GetCourseUser] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)
    failure: Exception | None = None

    answers_directly = True  # like the Tech API: every lookup is asked directly

    async def local_answer(self, email: str) -> DirectAnswer:
        return MISS

    async def direct_answer(self, email: str) -> DirectAnswer:
        self.asked.append(email)
        if self.failure is not None:
            raise self.failure
        return self.users.get(email)


@dataclass
class Routed:
    dispatcher: Dispatcher
    bot: Bot
    directory: FakeDirectory
    database: Database
    standins: StandIns
    notifier: RecordingNotifier

    async def feed(
        self,
        text: str,
        *,
        chat_type: str = "private",
        chat_id: int | None = None,
        user: int = USER,
    ) -> Any:
        chat: dict[str, Any] = {"id": user if chat_id is None else chat_id, "type": chat_type}
        if chat_type != "private":
            chat["title"] = "Group"
        update = Update.model_validate(
            {
                "update_id": next(_update_ids),
                "message": {
                    "message_id": next(_update_ids),
                    "date": 1_700_000_000,
                    "chat": chat,
                    "from": {"id": user, "is_bot": False, "first_name": "Ivan"},
                    "text": text,
                },
            },
            context={"bot": self.bot},
        )
        return await self.dispatcher.feed_update(self.bot, update)

    def replies(self, chat_id: int = USER) -> list[str]:
        return [m.text or "" for m in self.standins.telegram.bot_messages(chat_id)]

    async def state(self) -> str | None:
        key = StorageKey(bot_id=self.bot.id, chat_id=USER, user_id=USER)
        return await self.dispatcher.storage.get_state(key)


class RecordingNotifier:
    def __init__(self) -> None:
        self.notices: list[OperatorNotice] = []

    def notify(self, notice: OperatorNotice) -> None:
        self.notices.append(notice)


async def routed_for(
    standins: StandIns,
    *,
    policy: ConflictPolicy = ConflictPolicy.REFUSE,
    limits: LookupLimits | None = None,
    **settings: Any,
) -> AsyncIterator[Routed]:
    """The real services and Dispatcher, with lookups answered by a fake directory."""
    config = standins.settings(**settings)
    services = await create_services(config)
    directory = FakeDirectory(
        {"ivan@example.com": GetCourseUser(id="42", email="ivan@example.com", first_name="Иван")}
    )
    notifier = RecordingNotifier()
    services = replace(
        services,
        links=LinkService(
            services.database,
            directory,
            on_enqueued=lambda: None,
            gate=LookupGate(services.database, limits or LookupLimits(100, 1000)),
            conflict_policy=policy,
            notifier=notifier,
        ),
    )
    bot = create_bot(config)
    try:
        yield Routed(
            create_dispatcher(config, services),
            bot,
            directory,
            services.database,
            standins,
            notifier,
        )
    finally:
        await bot.session.close()
        await services.close()

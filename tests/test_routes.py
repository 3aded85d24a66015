"""Route tests: updates fed straight into the real Dispatcher (no polling); the Bot still talks
to the Telegram stand-in over HTTP, the GetCourse directory is an in-process fake."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.fsm.storage.base import StorageKey
from aiogram.types import Update

from bot.app import create_bot, create_dispatcher
from services.linking import LinkService
from services.models import GetCourseUser
from services.storage.database import Database
from services.storage.outbox import OutboxRepository
from tests.conftest import StandIns

USER = 100000001
_update_ids = itertools.count(1)


@dataclass
class FakeDirectory:
    users: dict[str, GetCourseUser] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)
    failure: Exception | None = None

    async def find_user_by_email(self, email: str) -> GetCourseUser | None:
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

    async def feed(self, text: str, *, chat_type: str = "private", chat_id: int = USER) -> Any:
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if chat_type != "private":
            chat["title"] = "Group"
        update = Update.model_validate(
            {
                "update_id": next(_update_ids),
                "message": {
                    "message_id": next(_update_ids),
                    "date": 1_700_000_000,
                    "chat": chat,
                    "from": {"id": USER, "is_bot": False, "first_name": "Ivan"},
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


async def routed_for(standins: StandIns, **settings: Any) -> AsyncIterator[Routed]:
    config = standins.settings(**settings)
    database = await Database.open(config.database_path)
    directory = FakeDirectory(
        {"ivan@example.com": GetCourseUser(id="42", email="ivan@example.com", first_name="Иван")}
    )
    links = LinkService(database, directory, on_enqueued=lambda: None)
    bot = create_bot(config)
    try:
        yield Routed(create_dispatcher(config, database, links), bot, directory, database, standins)
    finally:
        await bot.session.close()
        await database.close()


@pytest.fixture
async def routed(standins: StandIns) -> AsyncIterator[Routed]:
    async for value in routed_for(standins):
        yield value


async def test_start_asks_for_email_and_waits_for_it(routed: Routed) -> None:
    await routed.feed("/start")
    assert "email" in routed.replies()[-1]
    assert await routed.state() == "LinkDialog:waiting_email"


async def test_email_links_and_queues_salebot_write(routed: Routed) -> None:
    await routed.feed("/start")
    await routed.feed("IVAN@example.com")
    assert routed.directory.asked == ["ivan@example.com"]
    assert "Готово" in routed.replies()[-1]
    assert await routed.state() is None
    pending = await OutboxRepository(routed.database).pending_for(USER)
    assert pending is not None
    assert pending.variables == {
        "client.email": "ivan@example.com",
        "client.gc_user_id": "42",
        "client.telegram_id": str(USER),
    }


async def test_same_email_again_costs_no_lookup(routed: Routed) -> None:
    await routed.feed("ivan@example.com")
    await routed.feed("/email")
    await routed.feed("Ivan@Example.com")
    assert routed.directory.asked == ["ivan@example.com"]
    assert "уже привязан" in routed.replies()[-1]


async def test_linked_person_typing_text_is_told_how_to_change(routed: Routed) -> None:
    await routed.feed("ivan@example.com")
    await routed.feed("anna@example.org")  # not in a dialog: no second lookup
    assert routed.directory.asked == ["ivan@example.com"]
    assert "/email" in routed.replies()[-1]
    assert "i***@example.com" in routed.replies()[-1]


async def test_cancel_leaves_the_dialog(routed: Routed) -> None:
    await routed.feed("/start")
    await routed.feed("/cancel")
    assert await routed.state() is None
    assert "/start" in routed.replies()[-1]


async def test_unknown_command(routed: Routed) -> None:
    await routed.feed("/frobnicate")
    assert "Такой команды нет" in routed.replies()[-1]
    assert routed.directory.asked == []


async def test_group_chats_are_not_handled(routed: Routed) -> None:
    await routed.feed("/start", chat_type="group", chat_id=-5)
    await routed.feed("ivan@example.com", chat_type="group", chat_id=-5)
    assert routed.replies(-5) == []
    assert routed.directory.asked == []


async def test_unexpected_failure_gets_polite_answer(routed: Routed) -> None:
    routed.directory.failure = RuntimeError("boom")
    await routed.feed("ivan@example.com")
    assert "Что-то пошло не так" in routed.replies()[-1]
    assert await OutboxRepository(routed.database).pending_count() == 0


async def test_english_texts(standins: StandIns) -> None:
    async for routed in routed_for(standins, language="en"):
        await routed.feed("/start")
        assert "the email you use to sign in to GetCourse" in routed.replies()[-1]
        await routed.feed("nobody@example.com")
        assert "could not find" in routed.replies()[-1]

"""Harness for operator-console route tests: the real services, Bot and Dispatcher, fed
messages and button presses directly (no polling loop). GetCourse and Salebot are their
stand-ins over HTTP; the outbox worker does not run by itself (``deliver()`` runs it once)."""

from __future__ import annotations

import asyncio
import html
import itertools
import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.types import Update

import handlers
from bot.app import Services, create_bot, create_dispatcher, create_services
from handlers.texts import Texts
from sandbox.telegram import SentMessage
from tests.conftest import FUNNEL_BOT, OPERATOR_ID, StandIns

IVAN = 100000001  # Salebot client 836058541 in the seed data
MARIA = 100000002  # Salebot client 836058542
NEWCOMER = 100000099  # has no Salebot client
STRANGER = 100000777  # writes to the bot, is no operator
OPERATOR_CHAT = -1001234500
_ids = itertools.count(1)


@dataclass
class Console:
    standins: StandIns
    services: Services
    bot: Bot
    dispatcher: Dispatcher
    texts: Texts
    usernames: dict[int, str] = field(default_factory=dict)

    async def say(
        self,
        text: str,
        *,
        user: int = OPERATOR_ID,
        chat_id: int | None = None,
        username: str | None = None,
    ) -> None:
        """``user`` writes ``text`` in their private chat, or in the group ``chat_id``;
        ``username`` changes their Telegram username from then on."""
        if username is not None:
            self.usernames[user] = username
        chat: dict[str, Any] = {"id": user, "type": "private"}
        if chat_id is not None:
            chat = {"id": chat_id, "type": "supergroup", "title": "Support"}
        update = Update.model_validate(
            {
                "update_id": next(_ids),
                "message": {
                    "message_id": next(_ids),
                    "date": 1_700_000_000,
                    "chat": chat,
                    "from": self.sender(user),
                    "text": text,
                },
            },
            context={"bot": self.bot},
        )
        await self.dispatcher.feed_update(self.bot, update)

    async def press(
        self, message: SentMessage, label: str, *, user: int = OPERATOR_ID, too_old: bool = False
    ) -> str:
        """``user`` presses the button of ``message`` whose text contains ``label``; the
        update is taken from the Telegram stand-in as Telegram would deliver it (``too_old``:
        as it delivers a press on a message the bot can no longer act on)."""
        data = next(data for text, data in message.buttons() if label in text)
        query_id = self.standins.telegram.press_button(
            user, message.message_id, data, chat_id=message.chat_id, too_old=too_old
        )
        updates = await self.bot.get_updates(timeout=0)
        update = next(
            u for u in updates if u.callback_query is not None and u.callback_query.id == query_id
        )
        await self.bot.get_updates(offset=update.update_id + 1, timeout=0)
        raw = update.model_dump(mode="json", by_alias=True, exclude_none=True)
        raw["callback_query"]["from"] = self.sender(user)  # as in their messages
        await self.dispatcher.feed_update(
            self.bot, Update.model_validate(raw, context={"bot": self.bot})
        )
        return query_id

    def sender(self, user: int) -> dict[str, Any]:
        username = self.usernames.setdefault(user, f"user{user}")
        return {"id": user, "is_bot": False, "first_name": f"Name{user}", "username": username}

    def messages(self, chat_id: int = OPERATOR_ID) -> list[SentMessage]:
        return self.standins.telegram.bot_messages(chat_id)

    def last(self, chat_id: int = OPERATOR_ID) -> SentMessage:
        return self.messages(chat_id)[-1]

    def replies(self, chat_id: int = OPERATOR_ID) -> list[str]:
        """What the chat reads: the text of each bot message without its HTML markup."""
        return [plain(message.text or message.caption or "") for message in self.messages(chat_id)]

    def text(self, chat_id: int = OPERATOR_ID) -> str:
        return self.replies(chat_id)[-1]

    async def link_student(self, telegram_id: int, email: str) -> None:
        """The person links themselves through the student dialog; the write is delivered."""
        await self.say(email, user=telegram_id, username=f"student{telegram_id}")
        assert "Готово" in self.replies(telegram_id)[-1], self.replies(telegram_id)
        await self.deliver()

    async def deliver(self) -> int:
        return await self.services.outbox.deliver_due()

    def salebot_variables(self, telegram_id: int) -> dict[str, str]:
        client = self.standins.salebot.client_by_platform_id(telegram_id, FUNNEL_BOT)
        assert client is not None
        return self.standins.salebot.client_variables(client.id)

    async def rows(self, sql: str, *parameters: Any) -> list[dict[str, Any]]:
        rows = await self.services.database.fetchall(sql, parameters)
        return [dict(row) for row in rows]


def plain(markup: str) -> str:
    """Telegram HTML as the person reads it."""
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def operator_chat_notices(standins: StandIns, marker: str) -> list[str]:
    """What the bot told the operators' chat in messages that contain ``marker``, as read."""
    texts = [plain(message.text or "") for message in standins.telegram.bot_messages(OPERATOR_CHAT)]
    return [text for text in texts if marker in text]


async def console_for(standins: StandIns, **settings: Any) -> AsyncGenerator[Console, None]:
    config = standins.settings(**{"operator_chat_id": OPERATOR_CHAT, **settings})
    services = await create_services(config)
    bot = create_bot(config)
    dispatcher = create_dispatcher(config, services)
    texts = Texts.load(config.bot_language)
    # Lookups the directory misses are answered by the queue's worker, as in the running bot.
    answers = handlers.lookup_answers(
        bot, dispatcher, services.reachability, services.links.proof_methods
    )
    lookups = asyncio.create_task(services.lookups.run(answers))
    try:
        yield Console(standins, services, bot, dispatcher, texts)
    finally:
        lookups.cancel()
        await bot.session.close()
        await services.close()

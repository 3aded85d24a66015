"""Where the bot talks: private chats and the operators' chat (``OPERATOR_CHAT_ID``). Any other
group, supergroup or channel it is added to (or still sits in) it leaves, without a word:
people there may read what it would say."""

from __future__ import annotations

import logging

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Filter
from aiogram.types import Chat, ChatMemberUpdated, TelegramObject

log = logging.getLogger(__name__)

STAYING = ("member", "administrator", "creator", "restricted")


class ForeignChat(Filter):
    """A chat that is neither private nor the operators' chat."""

    async def __call__(
        self,
        event: TelegramObject,
        event_chat: Chat | None = None,
        operator_chat_id: int | None = None,
    ) -> bool:
        return is_foreign(event_chat, operator_chat_id)


def is_foreign(chat: Chat | None, operator_chat_id: int | None) -> bool:
    return chat is not None and chat.type != "private" and chat.id != operator_chat_id


def router() -> Router:
    router = Router(name="chats")
    router.my_chat_member.register(on_membership, ForeignChat())
    router.message.register(on_foreign_message, ForeignChat())
    return router


async def on_membership(event: ChatMemberUpdated, bot: Bot) -> None:
    if event.new_chat_member.status in STAYING:
        await _leave(bot, event.chat, "added")


async def on_foreign_message(event: TelegramObject, event_chat: Chat, bot: Bot) -> None:
    await _leave(bot, event_chat, "written to")


async def _leave(bot: Bot, chat: Chat, how: str) -> None:
    try:
        await bot.leave_chat(chat.id)
    except TelegramAPIError as error:
        log.warning("chat %s (%s): could not leave: %s", chat.id, chat.type, error)
        return
    log.info("chat %s (%s) %s: not the operators' chat, left", chat.id, chat.type, how)

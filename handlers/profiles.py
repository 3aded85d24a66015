"""Remembers the Telegram username and first name of whoever writes to the bot in private, so
operators can find people by ``@username``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Chat, TelegramObject, User

from services.profiles import ProfileBook
from services.storage.profiles import TelegramProfile

log = logging.getLogger(__name__)


class ProfileMiddleware(BaseMiddleware):
    """An outer middleware on updates (after aiogram has found ``event_from_user``)."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user = data.get("event_from_user")
        chat = data.get("event_chat")
        book: ProfileBook = data["profile_book"]
        # Only from private chats: someone merely present in the operators' chat is not kept.
        private = isinstance(chat, Chat) and chat.type == "private"
        if isinstance(user, User) and not user.is_bot and private:
            try:
                await book.saw(TelegramProfile(user.id, user.username, user.first_name))
            except Exception:
                # Only lookups by @username lose by it; the person still gets their answer.
                log.exception("could not store the profile of telegram %s", user.id)
        return await handler(event, data)

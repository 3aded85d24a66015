"""The last line of defence: an unexpected exception is logged with the update ID and the
person gets a polite "try again later" instead of silence."""

from __future__ import annotations

import logging

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.types import ErrorEvent

from handlers.texts import Texts

log = logging.getLogger(__name__)


def router() -> Router:
    router = Router(name="errors")
    router.errors.register(on_error)
    return router


async def on_error(event: ErrorEvent, bot: Bot, texts: Texts) -> None:
    update = event.update
    log.error(
        "update %s failed: %s",
        update.update_id,
        type(event.exception).__name__,
        exc_info=event.exception,
    )
    chat = None
    if update.message is not None:
        chat = update.message.chat
    elif update.callback_query is not None and update.callback_query.message is not None:
        chat = update.callback_query.message.chat
    if chat is None or chat.type != "private":
        return
    try:
        await bot.send_message(chat.id, texts.render("error"))
    except TelegramAPIError as error:
        log.warning("could not tell chat %s about the failure: %s", chat.id, error)

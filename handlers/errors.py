"""The last line of defence: an unexpected exception is logged with the update ID and the
person gets a polite "try again later" instead of silence."""

from __future__ import annotations

import logging

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramForbiddenError
from aiogram.methods import EditMessageText, SendMessage
from aiogram.types import ErrorEvent

from handlers.texts import Texts
from services.reachability import Reachability

log = logging.getLogger(__name__)

# Refusals that mean "nothing left to do": the message already says what we wanted it to say,
# or a button press is too old to answer.
BENIGN_BAD_REQUESTS = ("message is not modified", "query is too old")


def router() -> Router:
    router = Router(name="errors")
    router.errors.register(on_error)
    return router


async def on_error(event: ErrorEvent, bot: Bot, texts: Texts, reachability: Reachability) -> None:
    update = event.update
    failure = event.exception
    if isinstance(failure, TelegramForbiddenError):
        # The person blocked the bot: nothing to tell them, and nothing to retry.
        if isinstance(failure.method, SendMessage | EditMessageText) and isinstance(
            failure.method.chat_id, int
        ):
            await reachability.blocked_by(failure.method.chat_id)
        log.info("update %s: telegram refused to deliver (%s)", update.update_id, failure.message)
        return
    if isinstance(failure, TelegramBadRequest) and any(
        benign in failure.message for benign in BENIGN_BAD_REQUESTS
    ):
        log.info("update %s: %s", update.update_id, failure.message)
        return
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

"""The answer to an email lookup, in words: given in the dialog, or written to the person later
when their lookup waited in the queue for a GetCourse export."""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramForbiddenError
from aiogram.fsm.context import FSMContext
from aiogram.fsm.storage.base import BaseStorage, StorageKey

from handlers.texts import Texts
from services.linking import LookupResult
from services.reachability import Reachability
from services.storage.queued_lookups import QueuedLookup

log = logging.getLogger(__name__)

# Answers after which the dialog is over (the person is linked, or must talk to support).
DIALOG_ENDS = frozenset({LookupResult.LINKED, LookupResult.RELINKED, LookupResult.CONFLICT})


def answer_text(texts: Texts, result: LookupResult, email: str) -> str:
    # The result names its text ("linked", "not_found", ...).
    return texts.render(result.value, email=email)


async def deliver_answer(
    bot: Bot,
    storage: BaseStorage,
    texts: Texts,
    reachability: Reachability,
    lookup: QueuedLookup,
    result: LookupResult,
) -> bool:
    """Write the answer of a queued lookup to its person; ``False`` to try again later."""
    try:
        await bot.send_message(lookup.chat_id, answer_text(texts, result, lookup.email))
    except TelegramForbiddenError:
        await reachability.blocked_by(lookup.telegram_id)
        log.info("answer for telegram %s not delivered: bot blocked", lookup.telegram_id)
        return True
    except TelegramBadRequest as error:
        log.warning("answer for telegram %s refused: %s", lookup.telegram_id, error.message)
        return True  # the chat is gone; sending again cannot help
    except TelegramAPIError as error:
        log.info("answer for telegram %s not delivered yet: %s", lookup.telegram_id, error)
        return False
    if result in DIALOG_ENDS:
        key = StorageKey(bot_id=bot.id, chat_id=lookup.chat_id, user_id=lookup.telegram_id)
        await FSMContext(storage, key).clear()
    return True

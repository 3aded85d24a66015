"""The answer to an email lookup, in words: given in the dialog, or written to the person later
when their lookup waited in the queue for a GetCourse export."""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramForbiddenError
from aiogram.fsm.context import FSMContext
from aiogram.fsm.storage.base import BaseStorage, StorageKey
from aiogram.types import ReplyKeyboardMarkup, ReplyKeyboardRemove

from handlers.keyboards import proof_keyboard
from handlers.states import LinkDialog
from handlers.texts import Texts
from services.linking.flow import LookupResult
from services.linking.ownership import CODE_VALID_SECONDS, ProofMethod
from services.reachability import Reachability
from services.storage.queued_lookups import QueuedLookup

log = logging.getLogger(__name__)

# Answers after which the dialog is over (the person is linked, or must talk to support).
DIALOG_ENDS = frozenset({LookupResult.LINKED, LookupResult.RELINKED, LookupResult.CONFLICT})


def answer_text(
    texts: Texts, result: LookupResult, email: str, methods: tuple[ProofMethod, ...] = ()
) -> str:
    if result is LookupResult.PROOF:
        return proof_text(texts, methods)
    # The result names its text ("linked", "not_found", ...).
    return texts.render(result.value, email=email)


def proof_text(texts: Texts, methods: tuple[ProofMethod, ...]) -> str:
    """The same words for every email (they do not even name it): known to GetCourse or not."""
    minutes = CODE_VALID_SECONDS // 60
    lines = [texts.render("proof_intro")]
    lines += [texts.render(f"proof_by_{method}", minutes=minutes) for method in methods]
    return "\n".join(lines) + "\n\n" + texts.render("proof_hint")


def answer_markup(
    texts: Texts, result: LookupResult, methods: tuple[ProofMethod, ...]
) -> ReplyKeyboardMarkup | ReplyKeyboardRemove | None:
    """The proof's keyboard with its request, taken away once the dialog ends."""
    if result is LookupResult.PROOF:
        return proof_keyboard(texts, methods)
    if methods and result in DIALOG_ENDS:
        return ReplyKeyboardRemove()
    return None


async def settle_dialog(state: FSMContext, result: LookupResult) -> None:
    if result in DIALOG_ENDS:
        await state.clear()
    elif result is LookupResult.PROOF:
        await state.set_state(LinkDialog.proving)


async def deliver_answer(
    bot: Bot,
    storage: BaseStorage,
    texts: Texts,
    reachability: Reachability,
    lookup: QueuedLookup,
    result: LookupResult,
    methods: tuple[ProofMethod, ...] = (),
) -> bool:
    """Write the answer of a queued lookup to its person; ``False`` to try again later."""
    try:
        await bot.send_message(
            lookup.chat_id,
            answer_text(texts, result, lookup.email, methods),
            reply_markup=answer_markup(texts, result, methods),
        )
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
    key = StorageKey(bot_id=bot.id, chat_id=lookup.chat_id, user_id=lookup.telegram_id)
    await settle_dialog(FSMContext(storage, key), result)
    return True

"""Proving an email is one's own (OWNERSHIP_PROOF): the person's steps, and the operators' card.

Every answer before the proof reads the same whatever GetCourse knows; the link, and with it
"already linked to another account", comes only after the proof."""

from __future__ import annotations

import contextlib
import html
import logging
import re
from typing import Any

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Filter, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.storage.base import BaseStorage, StorageKey
from aiogram.types import CallbackQuery, Message, ReplyKeyboardRemove, User

from handlers.keyboards import PROOF_BUTTONS
from handlers.lookup_answers import answer_text
from handlers.operator_keyboards import ProofButton
from handlers.operator_keyboards import proof_keyboard as proof_card_keyboard
from handlers.operator_views import shown_email
from handlers.operators import ButtonMessage, FromOperator
from handlers.states import LinkDialog
from handlers.texts import Texts
from services.linking.flow import Conflict, Linked, LinkService, result_of
from services.linking.ownership import CODE_VALID_SECONDS, ProofAnswer, ProofMethod, ProofStep
from services.storage.directory import international_phone
from services.storage.ownership_proofs import PendingProof

log = logging.getLogger(__name__)

# What a typed code looks like: six digits, maybe spaced ("123 456").
CODE_PATTERN = re.compile(r"^\s*(\d\s*){6}$")


class ProofButtonText(Filter):
    """A press on a text button of the proof keyboard, handed over as ``method``."""

    async def __call__(self, message: Message, texts: Texts) -> bool | dict[str, Any]:
        for method, key in PROOF_BUTTONS.items():
            if method is not ProofMethod.CONTACT and message.text == texts.render(key):
                return {"method": method}
        return False


def router() -> Router:
    router = Router(name="proof")
    router.message.filter(F.chat.type == "private")
    router.message.register(on_proof_answer, F.contact)
    router.message.register(on_proof_button, ProofButtonText())
    router.message.register(
        on_proof_answer, StateFilter(LinkDialog.proving), F.text.regexp(CODE_PATTERN)
    )
    return router


def operator_router() -> Router:
    router = Router(name="proof_operators")
    router.callback_query.filter(FromOperator())
    router.callback_query.register(on_operator_answer, ProofButton.filter(), ButtonMessage())
    return router


async def on_proof_answer(
    message: Message,
    state: FSMContext,
    link_service: LinkService,
    texts: Texts,
    event_from_user: User,
) -> None:
    """A shared contact or a typed code: the person's answer to the proof request."""
    if message.contact is None:
        assert message.text is not None
        outcome = await link_service.prove_code(event_from_user.id, message.text)
    elif link_service.proof_methods:
        outcome = await link_service.prove_contact(
            event_from_user.id, message.contact.user_id, message.contact.phone_number
        )
    else:
        await message.answer(texts.render("not_text"))
        return
    await _tell(message, state, texts, outcome)


async def on_proof_button(
    message: Message,
    event_from_user: User,
    method: ProofMethod,
    bot: Bot,
    state: FSMContext,
    link_service: LinkService,
    texts: Texts,
    operator_chat_id: int | None = None,
) -> None:
    if method not in link_service.proof_methods:
        await _tell(message, state, texts, ProofAnswer(ProofStep.NOTHING_TO_PROVE))
        return
    if method is ProofMethod.EMAIL_CODE:
        await _tell(message, state, texts, await link_service.resend_code(event_from_user.id))
        return
    asked = await link_service.ask_operator(event_from_user.id)
    if isinstance(asked, ProofAnswer):
        await _tell(message, state, texts, asked)
        return
    assert operator_chat_id is not None  # the method is offered only with a chat
    try:
        await bot.send_message(
            operator_chat_id,
            # A private chat with an operator has a positive ID; a group's is negative.
            _card(texts, asked, event_from_user, private=operator_chat_id > 0),
            reply_markup=proof_card_keyboard(
                texts, asked.id, can_confirm=asked.gc_user_id is not None
            ),
        )
    except TelegramAPIError as error:
        log.warning("proof card for telegram %s not sent: %s", event_from_user.id, error)
        await link_service.operator_not_reached(asked)
        await message.answer(texts.render("operator_unreachable"))
        return
    await message.answer(texts.render("operator_asked"))


async def on_operator_answer(
    query: CallbackQuery,
    callback_data: ProofButton,
    message: Message,
    bot: Bot,
    fsm_storage: BaseStorage,
    link_service: LinkService,
    texts: Texts,
) -> None:
    decision = await link_service.operator_decides(
        query.from_user.id, callback_data.proof_id, callback_data.confirm
    )
    if decision is None:
        await query.answer(texts.render("proof_card_expired"), show_alert=True)
        with contextlib.suppress(TelegramAPIError):  # its buttons may be gone already
            await message.edit_reply_markup(reply_markup=None)
        return
    await query.answer()
    proof, outcome = decision.proof, decision.outcome
    operator = _who(query.from_user)
    if outcome is None:
        line = texts.render("proof_card_refused", operator=operator)
        told = texts.render("proof_refused")
    else:
        key = "proof_card_conflict" if isinstance(outcome, Conflict) else "proof_card_confirmed"
        line = texts.render(key, operator=operator, telegram_id=proof.telegram_id)
        told = answer_text(texts, result_of(outcome), proof.email)
    # The person first: the decision is made, and a card that cannot be edited must not hold
    # their answer back.
    person = StorageKey(bot_id=bot.id, chat_id=proof.chat_id, user_id=proof.telegram_id)
    await FSMContext(fsm_storage, person).clear()
    try:
        await bot.send_message(proof.chat_id, told, reply_markup=ReplyKeyboardRemove())
    except TelegramAPIError as error:
        log.warning("proof answer for telegram %s not delivered: %s", proof.telegram_id, error)
    try:
        await message.edit_text(f"{html.escape(message.text or '')}\n\n{line}", reply_markup=None)
    except TelegramAPIError as error:
        log.warning("proof card of telegram %s not updated: %s", proof.telegram_id, error)


async def _tell(
    message: Message, state: FSMContext, texts: Texts, outcome: Linked | Conflict | ProofAnswer
) -> None:
    if isinstance(outcome, ProofAnswer):
        if outcome.step is ProofStep.NOTHING_TO_PROVE:
            await state.set_state(LinkDialog.waiting_email)
            await message.answer(
                texts.render(outcome.step.value), reply_markup=ReplyKeyboardRemove()
            )
            return
        await message.answer(
            texts.render(
                outcome.step.value,
                tries=outcome.tries_left,
                seconds=outcome.wait_seconds,
                minutes=CODE_VALID_SECONDS // 60,
            )
        )
        return
    await state.clear()
    email = outcome.link.email if isinstance(outcome, Linked) else outcome.email
    await message.answer(
        answer_text(texts, result_of(outcome), email), reply_markup=ReplyKeyboardRemove()
    )


def _card(texts: Texts, proof: PendingProof, person: User, *, private: bool) -> str:
    """Full email and phone only in a private chat, as on every operator card."""
    email = shown_email(proof.email, private=private)
    lines = [
        texts.render("proof_card", telegram_id=proof.telegram_id, name=_who(person), email=email)
    ]
    if proof.gc_user_id is None:
        lines.append(texts.render("proof_card_unknown"))
    else:
        phone = international_phone(proof.phone) if proof.phone else ""
        if phone and not private:
            phone = f"•••{phone[-4:]}"
        lines.append(
            texts.render(
                "proof_card_user",
                gc_user_id=proof.gc_user_id,
                gc_name=proof.gc_name or "—",
                phone=phone or texts.render("proof_card_no_phone"),
            )
        )
    return "\n".join(lines)


def _who(user: User) -> str:
    if user.username:
        return f"@{user.username}"
    return user.full_name or str(user.id)

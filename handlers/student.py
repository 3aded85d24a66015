"""The student dialog: /start, sending an email, changing it later."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandStart, Filter, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message, ReplyKeyboardRemove, User
from aiogram.utils.chat_action import ChatActionSender

from handlers.erasure_views import erased
from handlers.keyboards import ChangeEmail, ForgetButton, change_email_keyboard, forget_keyboard
from handlers.lookup_answers import answer_markup, answer_text, settle_dialog
from handlers.states import LinkDialog
from handlers.texts import Texts
from services.email import MAX_EMAIL_LENGTH, mask_email, normalize_email
from services.errors import (
    GetCourseError,
    InvalidEmail,
    LookupRefused,
    TooManyAttempts,
)
from services.linking.flow import LinkOutcome, LinkService, LookupResult, Queued, result_of
from services.linking.lookup_queue import LookupQueue
from services.models import Link
from services.privacy.erasure import ErasureService

log = logging.getLogger(__name__)

# How much of a wrong input is quoted back (escaped) so the person sees what was meant.
QUOTE_LIMIT = 40
# Seconds a lookup may take before the person is told it is being checked.
CHECKING_NOTICE_AFTER = 0.5


def router() -> Router:
    router = Router(name="student")
    # Students talk to the bot in private; group chats are not a place to share an email.
    router.message.filter(F.chat.type == "private")
    router.callback_query.filter(F.message.chat.type == "private")

    router.message.register(on_start, CommandStart())
    router.message.register(on_change_email_command, Command("email"))
    router.callback_query.register(on_change_email_button, ChangeEmail.filter())
    router.message.register(on_cancel, Command("cancel"))
    router.message.register(on_forget, Command("forget"))
    router.callback_query.register(on_forget_button, ForgetButton.filter())
    router.message.register(on_unknown_command, F.text.startswith("/"))
    router.message.register(on_already_linked, StateFilter(None), F.text, HasLink())
    # Someone not linked yet may just type their email without /start: take it as one. While
    # proving, another text than a code is another email.
    router.message.register(
        on_email, StateFilter(None, LinkDialog.waiting_email, LinkDialog.proving), F.text
    )
    router.message.register(on_not_text)
    return router


async def on_start(
    message: Message,
    event_from_user: User,
    state: FSMContext,
    link_service: LinkService,
    texts: Texts,
    school_name: str | None = None,
    privacy_policy_url: str | None = None,
) -> None:
    link = await link_service.current_link(event_from_user.id)
    if link is None:
        await state.set_state(LinkDialog.waiting_email)
        # Starting over abandons a proof under way, and its keyboard goes.
        abandoned = await link_service.cancel_proof(event_from_user.id)
        await message.answer(
            first_message(texts, school_name, privacy_policy_url),
            reply_markup=ReplyKeyboardRemove() if abandoned else None,
        )
        return
    await state.clear()
    await message.answer(
        texts.render("start_linked", email=mask_email(link.email)),
        reply_markup=change_email_keyboard(texts),
    )


def first_message(texts: Texts, school_name: str | None, privacy_policy_url: str | None) -> str:
    """The greeting, the request for the email, and one line on what is kept and why."""
    greeting = (
        texts.render("greeting_school", school=school_name)
        if school_name
        else texts.render("greeting")
    )
    privacy = texts.render("privacy_note")
    if privacy_policy_url:
        privacy += "\n" + texts.render("privacy_policy", url=privacy_policy_url)
    return "\n\n".join([greeting, texts.render("start_new"), privacy])


async def on_change_email_command(message: Message, state: FSMContext, texts: Texts) -> None:
    await state.set_state(LinkDialog.waiting_email)
    await message.answer(texts.render("ask_new_email"))


async def on_change_email_button(query: CallbackQuery, state: FSMContext, texts: Texts) -> None:
    await state.set_state(LinkDialog.waiting_email)
    await query.answer()
    if query.message is not None:
        await query.message.answer(texts.render("ask_new_email"))


async def on_cancel(
    message: Message,
    state: FSMContext,
    link_service: LinkService,
    texts: Texts,
    event_from_user: User,
) -> None:
    await state.clear()
    # A proof under way ends too, and its keyboard goes.
    markup = ReplyKeyboardRemove() if await link_service.cancel_proof(event_from_user.id) else None
    if await link_service.cancel_queued(event_from_user.id):
        await message.answer(texts.render("cancelled_queued"), reply_markup=markup)
        return
    link = await link_service.current_link(event_from_user.id)
    if link is None:
        await message.answer(texts.render("cancelled_new"), reply_markup=markup)
    else:
        await message.answer(
            texts.render("cancelled_linked", email=mask_email(link.email)), reply_markup=markup
        )


async def on_forget(message: Message, texts: Texts) -> None:
    await message.answer(texts.render("forget_question"), reply_markup=forget_keyboard(texts))


async def on_forget_button(
    query: CallbackQuery,
    callback_data: ForgetButton,
    bot: Bot,
    erasure: ErasureService,
    texts: Texts,
) -> None:
    if not callback_data.confirm:
        text = texts.render("forget_cancelled")
    else:
        # The dialog state goes with everything else; nothing is written after this.
        text = erased(texts, await erasure.erase(query.from_user.id), title="forget_done")
    await query.answer()
    if isinstance(query.message, Message):
        await query.message.edit_text(text)
    else:  # a message too old to edit
        await bot.send_message(query.from_user.id, text)


async def on_unknown_command(message: Message, texts: Texts) -> None:
    await message.answer(texts.render("unknown_command"))


class HasLink(Filter):
    """The sender is linked: their link is handed over as ``link``."""

    async def __call__(
        self, message: Message, event_from_user: User, link_service: LinkService
    ) -> bool | dict[str, Any]:
        link = await link_service.current_link(event_from_user.id)
        return False if link is None else {"link": link}


async def on_already_linked(message: Message, texts: Texts, link: Link) -> None:
    await message.answer(texts.render("already_linked", email=mask_email(link.email)))


async def on_email(
    message: Message,
    event_from_user: User,
    bot: Bot,
    state: FSMContext,
    link_service: LinkService,
    texts: Texts,
    lookup_queue: LookupQueue,
    queued_notice_after: float = 0.0,
) -> None:
    assert message.text is not None
    telegram_id = event_from_user.id
    text = message.text
    if len(text.strip()) > MAX_EMAIL_LENGTH:
        await message.answer(texts.render("too_long"))
        return
    try:
        email = normalize_email(text)
    except InvalidEmail:
        await message.answer(texts.render("invalid_email", text=_quote(text)))
        return
    current = await link_service.current_link(telegram_id)
    if current is not None and current.email == email:
        await state.clear()
        await message.answer(texts.render("same_email"))
        return

    try:
        outcome = await _announced_lookup(message, telegram_id, bot, link_service, texts, email)
        if isinstance(outcome, Queued):
            async with ChatActionSender.typing(bot=bot, chat_id=message.chat.id):
                result = await _queued_answer(
                    message, outcome, lookup_queue, texts, queued_notice_after
                )
            if result is None:
                return  # the queue writes to the person when the answer comes
        else:
            result = result_of(outcome)
    except TooManyAttempts as refused:
        await message.answer(texts.render("too_many_attempts", minutes=_minutes(refused)))
        return
    except GetCourseError as error:
        log.warning("lookup for telegram %s could not be completed: %s", telegram_id, error)
        await message.answer(texts.render("try_later"))
        return
    methods = link_service.proof_methods
    await settle_dialog(state, result)
    await message.answer(
        answer_text(texts, result, email, methods),
        reply_markup=answer_markup(texts, result, methods),
    )


async def _announced_lookup(
    message: Message,
    telegram_id: int,
    bot: Bot,
    link_service: LinkService,
    texts: Texts,
    email: str,
) -> LinkOutcome | Queued:
    """The lookup of ``email``; "checking…" is said only when the answer is not there at once
    (a directory hit takes milliseconds, and a notice right before the answer is noise), except
    while a proof is asked: then always, as whether it comes tells a directory hit from a miss."""
    lookup = asyncio.ensure_future(link_service.link(telegram_id, message.chat.id, email))
    try:
        if not link_service.proof_methods:
            await asyncio.wait({lookup}, timeout=CHECKING_NOTICE_AFTER)
            if lookup.done() and (lookup.exception() or not isinstance(lookup.result(), Queued)):
                return lookup.result()  # the lookup's error, if it failed, is raised here
        await message.answer(texts.render("checking", email=email))
        async with ChatActionSender.typing(bot=bot, chat_id=message.chat.id):
            return await lookup
    finally:
        lookup.cancel()  # only does something when this handler itself is cancelled


async def _queued_answer(
    message: Message,
    queued: Queued,
    lookup_queue: LookupQueue,
    texts: Texts,
    notice_after: float,
) -> LookupResult | None:
    """Wait for a queued lookup's answer; past ``notice_after`` (0: no limit), tell the person
    they are in the queue and hand the answer over to the queue (``None``)."""
    answer = lookup_queue.claim(queued.lookup_id)
    try:
        if notice_after <= 0:
            return await answer
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(asyncio.shield(answer), notice_after)
        await message.answer(texts.render("queued"))
        # An answer that came while the notice was on its way still belongs to this turn.
        return answer.result() if answer.done() and not answer.cancelled() else None
    finally:
        lookup_queue.release(queued.lookup_id)


async def on_not_text(message: Message, texts: Texts) -> None:
    await message.answer(texts.render("not_text"))


def _minutes(refused: LookupRefused) -> int:
    return max(1, math.ceil(refused.retry_after / 60))


def _quote(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= QUOTE_LIMIT else flat[: QUOTE_LIMIT - 1] + "…"

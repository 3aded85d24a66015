"""The student dialog: /start, sending an email, changing it later."""

from __future__ import annotations

import asyncio
import logging
import math

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandStart, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message
from aiogram.utils.chat_action import ChatActionSender

from handlers.keyboards import ChangeEmail, change_email_keyboard
from handlers.texts import Texts
from services.email import MAX_EMAIL_LENGTH, mask_email, normalize_email
from services.errors import (
    GetCourseError,
    InvalidEmail,
    LookupRefused,
    LookupsThrottled,
    TooManyAttempts,
)
from services.linking import Conflict, Linked, LinkService

log = logging.getLogger(__name__)

# How much of a wrong input is quoted back (escaped) so the person sees what was meant.
QUOTE_LIMIT = 40


class LinkDialog(StatesGroup):
    waiting_email = State()


def router() -> Router:
    router = Router(name="student")
    # Students talk to the bot in private; group chats are not a place to share an email.
    router.message.filter(F.chat.type == "private")
    router.callback_query.filter(F.message.chat.type == "private")

    router.message.register(on_start, CommandStart())
    router.message.register(on_change_email_command, Command("email"))
    router.callback_query.register(on_change_email_button, ChangeEmail.filter())
    router.message.register(on_cancel, Command("cancel"))
    router.message.register(on_unknown_command, F.text.startswith("/"))
    router.message.register(on_email, StateFilter(LinkDialog.waiting_email), F.text)
    router.message.register(on_text_without_dialog, StateFilter(None), F.text)
    router.message.register(on_not_text)
    return router


async def on_start(
    message: Message, state: FSMContext, link_service: LinkService, texts: Texts
) -> None:
    assert message.from_user is not None
    link = await link_service.current_link(message.from_user.id)
    if link is None:
        await state.set_state(LinkDialog.waiting_email)
        await message.answer(texts.render("start_new"))
        return
    await state.clear()
    await message.answer(
        texts.render("start_linked", email=mask_email(link.email)),
        reply_markup=change_email_keyboard(texts),
    )


async def on_change_email_command(message: Message, state: FSMContext, texts: Texts) -> None:
    await state.set_state(LinkDialog.waiting_email)
    await message.answer(texts.render("ask_new_email"))


async def on_change_email_button(query: CallbackQuery, state: FSMContext, texts: Texts) -> None:
    await state.set_state(LinkDialog.waiting_email)
    await query.answer()
    if query.message is not None:
        await query.message.answer(texts.render("ask_new_email"))


async def on_cancel(
    message: Message, state: FSMContext, link_service: LinkService, texts: Texts
) -> None:
    assert message.from_user is not None
    await state.clear()
    link = await link_service.current_link(message.from_user.id)
    if link is None:
        await message.answer(texts.render("cancelled_new"))
    else:
        await message.answer(texts.render("cancelled_linked", email=mask_email(link.email)))


async def on_unknown_command(message: Message, texts: Texts) -> None:
    await message.answer(texts.render("unknown_command"))


async def on_text_without_dialog(
    message: Message,
    bot: Bot,
    state: FSMContext,
    link_service: LinkService,
    texts: Texts,
    queued_notice_after: float = 0.0,
) -> None:
    """Someone not linked yet may just type their email without /start: take it as one."""
    assert message.from_user is not None
    link = await link_service.current_link(message.from_user.id)
    if link is None:
        await on_email(message, bot, state, link_service, texts, queued_notice_after)
        return
    await message.answer(texts.render("already_linked", email=mask_email(link.email)))


async def on_email(
    message: Message,
    bot: Bot,
    state: FSMContext,
    link_service: LinkService,
    texts: Texts,
    queued_notice_after: float = 0.0,
) -> None:
    assert message.from_user is not None
    assert message.text is not None
    telegram_id = message.from_user.id
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

    await message.answer(texts.render("checking", email=email))
    lookup = asyncio.ensure_future(link_service.link(telegram_id, email))
    try:
        async with ChatActionSender.typing(bot=bot, chat_id=message.chat.id):
            if queued_notice_after > 0:
                # A lookup gathered with others into one export may take minutes: say so, and
                # the answer below still reaches the person whenever it comes.
                done, _ = await asyncio.wait({lookup}, timeout=queued_notice_after)
                if not done:
                    await message.answer(texts.render("queued"))
            outcome = await lookup
    except TooManyAttempts as refused:
        await message.answer(texts.render("too_many_attempts", minutes=_minutes(refused)))
        return
    except LookupsThrottled as refused:
        await message.answer(texts.render("lookups_throttled", minutes=_minutes(refused)))
        return
    except GetCourseError as error:
        log.warning("lookup for telegram %s could not be completed: %s", telegram_id, error)
        await message.answer(texts.render("try_later"))
        return
    finally:
        lookup.cancel()  # only matters when this handler itself was cut off (shutdown)
    if isinstance(outcome, Linked):
        await state.clear()
        key = "relinked" if outcome.previous is not None else "linked"
        await message.answer(texts.render(key, email=outcome.link.email))
    elif isinstance(outcome, Conflict):
        await state.clear()
        await message.answer(texts.render("conflict", email=outcome.email))
    else:
        await message.answer(texts.render("not_found", email=outcome.email))


async def on_not_text(message: Message, texts: Texts) -> None:
    await message.answer(texts.render("not_text"))


def _minutes(refused: LookupRefused) -> int:
    return max(1, math.ceil(refused.retry_after / 60))


def _quote(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= QUOTE_LIMIT else flat[: QUOTE_LIMIT - 1] + "…"

"""aiogram routers only: they call services and render the result with ``handlers.texts``.

The bot uses this package through this module alone: ``install`` puts the routers, and the texts
they speak with, into a dispatcher; the other functions are what the bot says unasked (a queued
lookup's answer, operator notices, the command menus, the code letter, any one text), in the same
words."""

from __future__ import annotations

import functools

from aiogram import Bot, Dispatcher
from aiogram.types import BotCommand

from handlers import chats, errors, fallback, operators, proof, student
from handlers.letters import letter_renderer
from handlers.lookup_answers import deliver_answer
from handlers.notices import render_notices
from handlers.texts import Texts
from services.linking.lookup_queue import Deliver as DeliverAnswer
from services.linking.ownership import LetterRenderer, ProofMethod
from services.notifications import Deliver as DeliverNotices
from services.notifications import NoticeGroup
from services.reachability import Reachability

STUDENT_COMMANDS = ("start", "email", "cancel", "forget")


def install(dispatcher: Dispatcher, language: str) -> None:
    dispatcher["texts"] = Texts.load(language)
    # Foreign groups first: the bot leaves them and answers nothing there. Then operators:
    # their router takes only operators' updates and passes everyone else's on untouched, so
    # to a student an operator command is just an unknown command.
    # The proof's steps (a contact, a code, its buttons) come before the student dialog, which
    # takes any other text as an email.
    dispatcher.include_routers(
        errors.router(),
        chats.router(),
        operators.router(),
        proof.operator_router(),
        proof.router(),
        student.router(),
        fallback.router(),
    )


def command_menu(dispatcher: Dispatcher, *, student: bool, operator: bool) -> list[BotCommand]:
    """The student's commands, the operator's, or both (an operator in a private chat)."""
    texts = _texts(dispatcher)
    names: tuple[str, ...] = STUDENT_COMMANDS if student else ()
    if operator:
        names += operators.OPERATOR_COMMANDS
    return [BotCommand(command=name, description=texts.render(f"command_{name}")) for name in names]


def lookup_answers(
    bot: Bot, dispatcher: Dispatcher, reachability: Reachability, methods: tuple[ProofMethod, ...]
) -> DeliverAnswer:
    """Writes the answer of a queued lookup to its person, and moves their dialog on."""
    return functools.partial(
        deliver_answer, bot, dispatcher.storage, _texts(dispatcher), reachability, methods=methods
    )


def operator_notices(bot: Bot, dispatcher: Dispatcher, chat_id: int) -> DeliverNotices:
    """Sends each batch of operator notices to the operator chat as one message."""
    texts = _texts(dispatcher)

    async def send(batch: list[NoticeGroup]) -> None:
        await bot.send_message(chat_id, render_notices(texts, batch))

    return send


def code_letter(language: str, school_name: str | None) -> LetterRenderer:
    return letter_renderer(Texts.load(language), school_name)


def said(language: str, key: str, **values: object) -> str:
    """One text as the bot says it in ``language``, for what speaks outside the routers (the
    flood guard's warning) or listens for what the bot says (the sandbox)."""
    return Texts.load(language).render(key, **values)


def _texts(dispatcher: Dispatcher) -> Texts:
    texts = dispatcher["texts"]
    assert isinstance(texts, Texts), "handlers.install puts the texts in first"
    return texts

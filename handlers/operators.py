"""Operator commands inside the bot, for the Telegram users in ``OPERATOR_IDS`` only.

The router-level filter checks every message and button press. Anyone else's update is not
this router's: it passes on to the student router untouched, so a non-operator who types
/find gets the unknown-command answer, exactly as for a command that does not exist."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandObject, Filter
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    Chat,
    Message,
    TelegramObject,
    User,
)
from aiogram.utils.chat_action import ChatActionSender

from handlers import operator_views as views
from handlers.erasure_views import erased
from handlers.operator_keyboards import (
    CardAction,
    CardButton,
    EraseButton,
    LinkButton,
    RetryAllButton,
    UnlinkButton,
    card_keyboard,
    erase_keyboard,
    link_keyboard,
    retry_keyboard,
    unlink_keyboard,
)
from handlers.texts import Texts
from services.console.change import LinkChanged, OperatorChanges
from services.console.export import LinksExport
from services.console.find import InvalidQuery, PersonFinder
from services.console.report import ConsoleReports
from services.email import normalize_email
from services.errors import GetCourseError, InvalidEmail
from services.getcourse.directory_sync import DirectorySync, SyncKind, SyncProgress, SyncResult
from services.linking.flow import NotFound
from services.models import GetCourseUser
from services.privacy.erasure import ErasureService
from services.redaction import error_text

log = logging.getLogger(__name__)

AUDIT_DEFAULT = 10
AUDIT_MAX = 20  # more would not fit one Telegram message
QUERY_QUOTE_LIMIT = 60
# Where an operator's /link waits for its confirmation (the operator's FSM data in that chat).
PROPOSAL_KEY = "operator_link_proposal"


class FromOperator(Filter):
    """Passes updates from the Telegram users in ``operator_ids`` (workflow data), in their
    private chat with the bot or in ``operator_chat_id``: in any other group the console says
    nothing, since anyone there would read it."""

    async def __call__(
        self,
        event: TelegramObject,
        event_from_user: User | None = None,
        event_chat: Chat | None = None,
        operator_ids: frozenset[int] = frozenset(),
        operator_chat_id: int | None = None,
    ) -> bool:
        if event_from_user is None or event_from_user.id not in operator_ids:
            return False
        return event_chat is not None and (
            event_chat.type == "private" or event_chat.id == operator_chat_id
        )


class ButtonMessage(Filter):
    """A press on a button whose message the bot can still edit, handed over as ``message``.
    Telegram leaves only a stub of old messages; such presses go on to the fallback router."""

    async def __call__(self, query: CallbackQuery) -> bool | dict[str, Any]:
        return {"message": query.message} if isinstance(query.message, Message) else False


def router() -> Router:
    router = Router(name="operators")
    router.message.filter(FromOperator())
    router.callback_query.filter(FromOperator())

    for name, handler in COMMAND_HANDLERS.items():
        router.message.register(handler, Command(name))
    router.callback_query.register(on_card_button, CardButton.filter(), ButtonMessage())
    router.callback_query.register(on_link_button, LinkButton.filter(), ButtonMessage())
    router.callback_query.register(
        on_unlink_button, UnlinkButton.filter(F.confirm), ButtonMessage()
    )
    router.callback_query.register(on_erase_button, EraseButton.filter(F.confirm), ButtonMessage())
    for button, cancelled in ((UnlinkButton, "unlink_cancelled"), (EraseButton, "erase_cancelled")):
        router.callback_query.register(
            _cancel(cancelled), button.filter(~F.confirm), ButtonMessage()
        )
    router.callback_query.register(on_retry_all_button, RetryAllButton.filter(), ButtonMessage())
    return router


async def on_help(message: Message, texts: Texts) -> None:
    await message.answer(texts.render("help_operator"))


async def on_find(
    message: Message, command: CommandObject, person_finder: PersonFinder, texts: Texts
) -> None:
    query = (command.args or "").strip()
    if not query:
        await message.answer(texts.render("find_usage"))
        return
    try:
        result = await person_finder.find(query)
    except InvalidQuery:
        await message.answer(texts.render("find_usage"))
        return
    if not result.cards:
        await message.answer(texts.render("find_nothing", query=_quote(query)))
        return
    private = _private(message.chat)
    for person in result.cards:
        await message.answer(
            views.card(texts, person, private=private),
            reply_markup=card_keyboard(texts, person.telegram_id, linked=person.link is not None),
        )
    if result.total > len(result.cards):
        await message.answer(texts.render("find_more", total=result.total, shown=len(result.cards)))


async def on_link(
    message: Message,
    command: CommandObject,
    bot: Bot,
    state: FSMContext,
    operator_changes: OperatorChanges,
    texts: Texts,
) -> None:
    parts = (command.args or "").split()
    if len(parts) != 2 or not parts[0].isdigit():
        await message.answer(texts.render("link_usage"))
        return
    telegram_id = int(parts[0])
    try:
        email = normalize_email(parts[1])
    except InvalidEmail:
        await message.answer(texts.render("link_usage"))
        return
    private = _private(message.chat)
    shown = views.shown_email(email, private=private)
    await message.answer(texts.render("link_checking", email=shown))
    try:
        async with ChatActionSender.typing(bot=bot, chat_id=message.chat.id):
            outcome = await operator_changes.propose_link(telegram_id, email)
    except GetCourseError as error:
        await message.answer(texts.render("link_try_later", error=error_text(error)))
        return
    if isinstance(outcome, NotFound):
        await message.answer(texts.render("link_not_found", email=shown))
        return
    user = outcome.user
    await state.update_data(
        {
            PROPOSAL_KEY: {
                "telegram_id": telegram_id,
                "gc_user_id": user.id,
                "email": user.email,
                "first_name": user.first_name,
                "last_name": user.last_name,
            }
        }
    )
    await message.answer(
        views.proposal(texts, outcome, private=private),
        reply_markup=link_keyboard(
            texts, telegram_id, user.id, outcome.current.version if outcome.current else 0
        ),
    )


async def on_link_button(
    query: CallbackQuery,
    message: Message,
    callback_data: LinkButton,
    state: FSMContext,
    operator_changes: OperatorChanges,
    texts: Texts,
) -> None:
    data = await state.get_data()
    saved: dict[str, Any] | None = data.get(PROPOSAL_KEY)
    if not callback_data.confirm:
        await state.set_data({key: value for key, value in data.items() if key != PROPOSAL_KEY})
        await message.edit_text(texts.render("link_cancelled"))
        await query.answer()
        return
    # Only the operator who asked confirms, and only the proposal they were shown last.
    if (
        saved is None
        or saved["telegram_id"] != callback_data.telegram_id
        or saved["gc_user_id"] != callback_data.gc_user_id
    ):
        await query.answer(texts.render("link_expired"), show_alert=True)
        return
    user = GetCourseUser(
        id=saved["gc_user_id"],
        email=saved["email"],
        first_name=saved["first_name"],
        last_name=saved["last_name"],
    )
    outcome = await operator_changes.link(
        query.from_user.id, callback_data.telegram_id, user, callback_data.version
    )
    await state.set_data({key: value for key, value in data.items() if key != PROPOSAL_KEY})
    if isinstance(outcome, LinkChanged):
        text = texts.render("link_stale", telegram_id=callback_data.telegram_id)
    else:
        text = views.linked(texts, outcome, private=_private(message.chat))
    await message.edit_text(text)
    await query.answer()


async def on_unlink(
    message: Message,
    command: CommandObject,
    person_finder: PersonFinder,
    operator_changes: OperatorChanges,
    texts: Texts,
) -> None:
    argument = (command.args or "").strip()
    if not argument.isdigit():
        await message.answer(texts.render("unlink_usage"))
        return
    await _ask_to_unlink(message, int(argument), person_finder, operator_changes, texts)


async def _ask_to_unlink(
    message: Message,
    telegram_id: int,
    person_finder: PersonFinder,
    operator_changes: OperatorChanges,
    texts: Texts,
) -> None:
    person = await person_finder.card(telegram_id)
    if person.link is None:
        await message.answer(texts.render("not_linked", telegram_id=telegram_id))
        return
    await message.answer(
        views.unlink_question(
            texts,
            person,
            keeps_variables=operator_changes.keeps_variables_on_unlink,
            private=_private(message.chat),
        ),
        reply_markup=unlink_keyboard(texts, telegram_id, person.link.version),
    )


async def on_unlink_button(
    query: CallbackQuery,
    message: Message,
    callback_data: UnlinkButton,
    person_finder: PersonFinder,
    operator_changes: OperatorChanges,
    texts: Texts,
) -> None:
    telegram_id = callback_data.telegram_id
    outcome = await operator_changes.unlink(query.from_user.id, telegram_id, callback_data.version)
    if outcome is None:
        await message.edit_text(texts.render("not_linked", telegram_id=telegram_id))
    elif isinstance(outcome, LinkChanged):
        # The link was changed since the question: ask about the link as it is now.
        await message.edit_text(texts.render("unlink_stale", telegram_id=telegram_id))
        await _ask_to_unlink(message, telegram_id, person_finder, operator_changes, texts)
    else:
        await message.edit_text(views.unlinked(texts, outcome, private=_private(message.chat)))
    await query.answer()


async def on_erase(
    message: Message, command: CommandObject, person_finder: PersonFinder, texts: Texts
) -> None:
    argument = (command.args or "").strip()
    if not argument.isdigit():
        await message.answer(texts.render("erase_usage"))
        return
    telegram_id = int(argument)
    person = await person_finder.card(telegram_id)
    await message.answer(
        views.erase_question(texts, person, private=_private(message.chat)),
        reply_markup=erase_keyboard(texts, telegram_id),
    )


async def on_erase_button(
    query: CallbackQuery,
    message: Message,
    callback_data: EraseButton,
    erasure: ErasureService,
    texts: Texts,
) -> None:
    outcome = await erasure.erase(callback_data.telegram_id, operator_id=query.from_user.id)
    await message.edit_text(erased(texts, outcome, title="erase_done"))
    await query.answer()


async def on_resync(
    message: Message,
    event_from_user: User,
    command: CommandObject,
    operator_changes: OperatorChanges,
    texts: Texts,
) -> None:
    argument = (command.args or "").strip()
    if argument.lower() == "failed":
        count = await operator_changes.retry_all(event_from_user.id)
        await message.answer(texts.render("retry_all_done", count=count))
    elif argument.isdigit():
        await _resync(message, event_from_user.id, int(argument), operator_changes, texts)
    else:
        await message.answer(texts.render("resync_usage"))


async def _resync(
    message: Message,
    operator_id: int,
    telegram_id: int,
    operator_changes: OperatorChanges,
    texts: Texts,
) -> None:
    link = await operator_changes.resync(operator_id, telegram_id)
    key = "resync_done" if link is not None else "not_linked"
    await message.answer(texts.render(key, telegram_id=telegram_id))


async def on_sync(
    message: Message,
    event_from_user: User,
    command: CommandObject,
    directory_sync: DirectorySync,
    operator_changes: OperatorChanges,
    texts: Texts,
) -> None:
    """Starts a directory sync in the background; its progress edits one message."""
    argument = (command.args or "").strip().lower()
    if argument not in ("", "full"):
        await message.answer(texts.render("sync_usage"))
        return
    kind = SyncKind.FULL if argument == "full" else SyncKind.INCREMENTAL
    if directory_sync.running:
        await message.answer(texts.render("sync_running"))
        return
    status = await message.answer(texts.render(f"sync_started_{kind}"))

    async def show(text: str) -> None:
        try:
            await status.edit_text(text)
        except TelegramAPIError as error:  # progress is a courtesy; the sync goes on
            log.warning("sync progress not shown: %s", error)

    async def progress(step: SyncProgress) -> None:
        if step.status is not None:
            status_name = views.gc_status(texts, step.status)
            await show(texts.render("sync_progress_status", rows=step.rows, status=status_name))
            return
        await show(
            texts.render(
                "sync_progress",
                day=step.day,
                percent=step.days_done * 100 // max(step.days_total, 1),
                rows=step.rows,
            )
        )

    async def done(outcome: SyncResult | GetCourseError) -> None:
        if isinstance(outcome, GetCourseError):
            await show(texts.render("sync_failed"))
        elif not outcome.complete:
            await show(texts.render("sync_paused", rows=outcome.rows))
        else:
            await show(
                texts.render(
                    "sync_done",
                    rows=outcome.rows,
                    removed=outcome.removed,
                    flagged=outcome.orphaned_links,
                    blocked=outcome.blocked_links,
                )
            )

    if directory_sync.start(kind, progress, done):
        await operator_changes.record_sync(event_from_user.id, kind)
    else:
        await show(texts.render("sync_running"))


async def on_queue(message: Message, console_reports: ConsoleReports, texts: Texts) -> None:
    report = await console_reports.queue()
    markup = retry_keyboard(texts) if report.total or report.follow_ups else None
    await message.answer(views.queue(texts, report), reply_markup=markup)


async def on_retry_all_button(
    query: CallbackQuery, message: Message, operator_changes: OperatorChanges, texts: Texts
) -> None:
    count = await operator_changes.retry_all(query.from_user.id)
    await query.answer(texts.render("retry_all_done", count=count))
    await message.answer(texts.render("retry_all_done", count=count))


async def on_stats(message: Message, console_reports: ConsoleReports, texts: Texts) -> None:
    figures = await console_reports.stats()
    await message.answer(views.stats(texts, figures))
    chart = await console_reports.links_chart(
        figures,
        title=texts.render("chart_title"),
        made_label=texts.render("chart_made"),
        changed_label=texts.render("chart_changed"),
    )
    await message.answer_photo(
        BufferedInputFile(chart, filename="links-per-day.png"),
        caption=texts.render("chart_caption"),
    )


async def on_export(
    message: Message, links_export: LinksExport, texts: Texts, event_from_user: User
) -> None:
    # A group may hold people who are not operators: the whole list goes to private chats only.
    if not _private(message.chat):
        await message.answer(texts.render("export_private_only"))
        return
    export = await links_export.export_csv(
        event_from_user.id, delimiter=texts.render("csv_delimiter")
    )
    filename = f"links-{datetime.now(UTC):%Y-%m-%d}.csv"
    await message.answer_document(
        BufferedInputFile(export.content, filename=filename),
        caption=texts.render("export_caption", rows=export.rows),
    )


async def on_audit(
    message: Message, command: CommandObject, console_reports: ConsoleReports, texts: Texts
) -> None:
    argument = (command.args or "").strip()
    if argument and not argument.isdigit():
        await message.answer(texts.render("audit_usage", limit=AUDIT_MAX))
        return
    count = min(max(int(argument), 1), AUDIT_MAX) if argument else AUDIT_DEFAULT
    entries = await console_reports.audit(count)
    await message.answer(views.audit(texts, entries, private=_private(message.chat)))


async def on_health(message: Message, console_reports: ConsoleReports, texts: Texts) -> None:
    await message.answer(views.health(texts, await console_reports.health()))


async def on_card_button(
    query: CallbackQuery,
    message: Message,
    callback_data: CardButton,
    person_finder: PersonFinder,
    operator_changes: OperatorChanges,
    texts: Texts,
) -> None:
    telegram_id = callback_data.telegram_id
    if callback_data.action is CardAction.RESYNC:
        await _resync(message, query.from_user.id, telegram_id, operator_changes, texts)
    elif callback_data.action is CardAction.UNLINK:
        await _ask_to_unlink(message, telegram_id, person_finder, operator_changes, texts)
    else:
        entries = await person_finder.history(telegram_id)
        await message.answer(views.history(texts, telegram_id, entries))
    await query.answer()


def _cancel(cancelled: str) -> Callable[[CallbackQuery, Message, Texts], Awaitable[None]]:
    """The handler of Cancel under a question: the text ``cancelled`` takes its place and
    nothing changes."""

    async def on_cancel(query: CallbackQuery, message: Message, texts: Texts) -> None:
        await message.edit_text(texts.render(cancelled))
        await query.answer()

    return on_cancel


def _private(chat: Chat) -> bool:
    return chat.type == "private"


def _quote(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= QUERY_QUOTE_LIMIT else flat[: QUERY_QUOTE_LIMIT - 1] + "…"


# The operator commands, in the order /help and the command menu list them.
COMMAND_HANDLERS: dict[str, Callable[..., Awaitable[None]]] = {
    "help": on_help,
    "find": on_find,
    "link": on_link,
    "unlink": on_unlink,
    "resync": on_resync,
    "queue": on_queue,
    "stats": on_stats,
    "export": on_export,
    "audit": on_audit,
    "health": on_health,
    "sync": on_sync,
    "erase": on_erase,
}
OPERATOR_COMMANDS = tuple(COMMAND_HANDLERS)

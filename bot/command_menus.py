"""The command menus Telegram shows: the students' for everyone, and each operator's own, in
their private chat with the bot and in the operator chat (a scope per operator, so nobody else
sees them). Menus set for someone no longer an operator are taken back."""

from __future__ import annotations

import logging

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BotCommandScopeChat, BotCommandScopeChatMember

import handlers
from bot.settings import Settings
from services.storage.database import Database
from services.storage.operator_menus import OperatorMenu, OperatorMenuRepository

log = logging.getLogger(__name__)


async def publish_commands(
    bot: Bot, dispatcher: Dispatcher, settings: Settings, database: Database
) -> None:
    await bot.set_my_commands(handlers.command_menu(dispatcher, student=True, operator=False))
    chat_id = settings.operator_chat_id
    wanted: set[OperatorMenu] = set()
    for operator_id in sorted(settings.operator_ids):
        wanted.add((operator_id, operator_id))
        if chat_id is not None:
            wanted.add((operator_id, chat_id))
    for menu in sorted(wanted):
        # The student dialog works in private chats only.
        commands = handlers.command_menu(dispatcher, student=menu[0] == menu[1], operator=True)
        try:
            await bot.set_my_commands(commands, scope=_menu_scope(menu))
        except TelegramAPIError as error:
            # Telegram knows no chat with someone who never wrote to the bot.
            log.warning("operator %s: command menu not set: %s", menu[0], error)
    menus = OperatorMenuRepository(database)
    kept = set(wanted)
    for menu in sorted(await menus.all() - wanted):
        try:
            await bot.delete_my_commands(scope=_menu_scope(menu))
            log.info("telegram %s: operator command menu taken back", menu[0])
        except TelegramAPIError as error:
            log.warning("telegram %s: operator command menu not taken back: %s", menu[0], error)
            kept.add(menu)  # tried again at the next start
    await menus.replace(kept)


def _menu_scope(menu: OperatorMenu) -> BotCommandScopeChat | BotCommandScopeChatMember:
    telegram_id, chat_id = menu
    if chat_id == telegram_id:
        return BotCommandScopeChat(chat_id=chat_id)
    return BotCommandScopeChatMember(chat_id=chat_id, user_id=telegram_id)

"""Consent and exposure (issue 12 item 5): the first message says what is kept and why; the
database files are the bot user's alone; operator commands answer only in private or in the
operators' chat; profiles come from private chats only; the bot leaves foreign groups."""

from __future__ import annotations

import itertools
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiogram.types import Update

from handlers.texts import LANGUAGES, Texts
from services.storage.database import Database
from tests.conftest import TOKEN, StandIns
from tests.operator_console import IVAN, OPERATOR_CHAT, STRANGER, Console, console_for, plain

RU = Texts.load("ru")
FOREIGN_GROUP = -1009876543
BOT_USER = {"id": int(TOKEN.partition(":")[0]), "is_bot": True, "first_name": "Bot"}
_ids = itertools.count(10_000)


@pytest.fixture
async def console(standins: StandIns) -> AsyncIterator[Console]:
    async for value in console_for(standins):
        yield value


# -- the first message ---------------------------------------------------------------------------


async def test_the_first_message_says_what_is_kept_and_why(console: Console) -> None:
    await console.say("/start", user=IVAN)
    first = console.text(IVAN)
    assert first.startswith(plain(RU.render("greeting")))
    assert first.endswith(plain(RU.render("privacy_note")))
    assert "/forget" in first
    assert "Политика" not in first  # no PRIVACY_POLICY_URL, no link


async def test_the_first_message_names_the_school_and_links_the_policy(
    standins: StandIns,
) -> None:
    url = "https://school.example/privacy"
    async for console in console_for(standins, school_name="Школа & Ко", privacy_policy_url=url):
        await console.say("/start", user=IVAN)
        text = console.last(IVAN).text or ""
        assert text.startswith("Здравствуйте! Я бот поддержки школы «Школа &amp; Ко».")
        assert text.endswith(f"Политика конфиденциальности: {url}")


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_language_has_the_same_texts_and_placeholders(language: str) -> None:
    texts = Texts.load(language)
    assert texts.keys() == RU.keys()
    for key in sorted(RU.keys()):
        assert texts.placeholders(key) == RU.placeholders(key), key


# -- the database files --------------------------------------------------------------------------


async def test_database_files_are_readable_by_the_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "data" / "bot.sqlite3"
    umask = os.umask(0o022)  # the usual default, which would make files world-readable
    try:
        database = await Database.open(path)
        async with database.transaction() as tx:  # a write, so the WAL has content
            await tx.execute("INSERT INTO lookups (telegram_id, at, outcome) VALUES (1, 0, 'x')")
        files = sorted(file.name for file in path.parent.iterdir())
        assert files == ["bot.sqlite3", "bot.sqlite3-shm", "bot.sqlite3-wal"]
        for file in path.parent.iterdir():
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file.name
        await database.close()
    finally:
        os.umask(umask)


async def test_an_existing_database_is_narrowed_to_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    database = await Database.open(path)
    await database.close()
    path.chmod(0o644)
    database = await Database.open(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    await database.close()


# -- chats ---------------------------------------------------------------------------------------

COMMANDS = ["/help", f"/find {IVAN}", "/audit", "/stats", "/health", f"/erase {IVAN}"]


@pytest.mark.parametrize("command", COMMANDS)
async def test_operator_commands_in_a_foreign_group_get_no_answer(
    console: Console, command: str
) -> None:
    await console.link_student(IVAN, "ivan.petrov@example.com")
    await console.say(command, chat_id=FOREIGN_GROUP)
    assert console.messages(FOREIGN_GROUP) == []
    assert console.standins.telegram.left_chats == [FOREIGN_GROUP]
    assert await console.rows("SELECT * FROM operator_audit") == []
    assert await console.services.links.current_link(IVAN) is not None

    await console.say(command, chat_id=OPERATOR_CHAT)  # the operators' chat is answered
    assert console.messages(OPERATOR_CHAT) != []
    assert console.standins.telegram.left_chats == [FOREIGN_GROUP]


async def test_operator_commands_answer_in_private(console: Console) -> None:
    await console.say("/help")
    assert console.text().startswith("Команды операторов")


def membership(chat_id: int, status: str) -> dict[str, Any]:
    return {
        "update_id": next(_ids),
        "my_chat_member": {
            "chat": {"id": chat_id, "type": "supergroup", "title": "Some group"},
            "from": {"id": STRANGER, "is_bot": False, "first_name": "Someone"},
            "date": 1_700_000_000,
            "old_chat_member": {"status": "left", "user": BOT_USER},
            "new_chat_member": {"status": status, "user": BOT_USER}
            | ({"until_date": 0} if status == "kicked" else {}),
        },
    }


async def feed(console: Console, update: dict[str, Any]) -> None:
    await console.dispatcher.feed_update(
        console.bot, Update.model_validate(update, context={"bot": console.bot})
    )


async def test_the_bot_leaves_a_group_it_is_added_to_but_not_the_operators_chat(
    console: Console,
) -> None:
    await feed(console, membership(OPERATOR_CHAT, "member"))
    await feed(console, membership(FOREIGN_GROUP, "member"))
    await feed(console, membership(FOREIGN_GROUP - 1, "kicked"))  # removed: nothing to leave
    assert console.standins.telegram.left_chats == [FOREIGN_GROUP]
    assert console.messages(FOREIGN_GROUP) == []
    # Adding the bot stored no profile of whoever added it.
    assert await console.rows("SELECT * FROM telegram_profiles") == []


async def test_profiles_come_from_private_chats_only(console: Console) -> None:
    await console.say("hello", user=STRANGER, chat_id=OPERATOR_CHAT)
    await console.say("/help", chat_id=OPERATOR_CHAT)
    assert await console.rows("SELECT * FROM telegram_profiles") == []
    await console.say("/start", user=STRANGER)
    profiles = await console.rows("SELECT telegram_id FROM telegram_profiles")
    assert profiles == [{"telegram_id": STRANGER}]

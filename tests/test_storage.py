"""Storage: migrations, the FSM storage contract on the same SQLite file, and the directory's
batch upsert."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import aiosqlite
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import StorageKey

from bot.fsm_storage import SQLiteStorage
from services.models import GetCourseUser
from services.storage.database import Database
from services.storage.dialog_state import DialogStateRepository
from services.storage.directory import DirectoryRepository
from services.storage.migrations import MIGRATIONS


class Dialog(StatesGroup):
    asking = State()


KEY = StorageKey(bot_id=42, chat_id=100, user_id=100)
OTHER = StorageKey(bot_id=42, chat_id=200, user_id=200)


async def test_migrations_apply_once_and_set_user_version(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "bot.sqlite3"
    database = await Database.open(path)
    await database.close()
    database = await Database.open(path)  # a second start applies nothing again
    await database.close()
    async with aiosqlite.connect(path) as raw:
        async with raw.execute("PRAGMA user_version") as cursor:
            assert await cursor.fetchone() == (len(MIGRATIONS),)
        async with raw.execute("PRAGMA journal_mode") as cursor:
            assert await cursor.fetchone() == ("wal",)


async def test_fsm_storage_contract(database: Database) -> None:
    storage = SQLiteStorage(DialogStateRepository(database))
    assert await storage.get_state(KEY) is None
    assert await storage.get_data(KEY) == {}

    await storage.set_state(KEY, Dialog.asking)
    assert await storage.get_state(KEY) == "Dialog:asking"
    await storage.set_data(KEY, {"attempts": 1, "email": "ivan@example.com"})
    assert await storage.get_data(KEY) == {"attempts": 1, "email": "ivan@example.com"}

    assert await storage.update_data(KEY, {"attempts": 2}) == {
        "attempts": 2,
        "email": "ivan@example.com",
    }
    assert await storage.get_value(KEY, "attempts") == 2
    assert await storage.get_state(OTHER) is None  # keys do not leak into each other

    await storage.set_state(KEY, None)
    await storage.set_data(KEY, {})
    assert await storage.get_state(KEY) is None
    assert await storage.get_data(KEY) == {}
    async with database.connection.execute("SELECT COUNT(*) FROM dialog_state") as cursor:
        assert tuple(await cursor.fetchone() or ()) == (0,)


async def test_dialog_survives_reopening_the_database(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    database = await Database.open(path)
    await SQLiteStorage(DialogStateRepository(database)).set_state(KEY, Dialog.asking)
    await database.close()

    database = await Database.open(path)
    try:
        assert (
            await SQLiteStorage(DialogStateRepository(database)).get_state(KEY) == "Dialog:asking"
        )
    finally:
        await database.close()


async def test_directory_upsert_stores_a_batch_as_given_and_keeps_a_known_status(
    database: Database,
) -> None:
    directory = DirectoryRepository(database)
    odd = GetCourseUser(
        id="7",
        email=" Odd.Person@Example.com",
        first_name='Анна "Аня"',
        last_name="O'Brien \\ 😀",
        phone="8 (916) 123-45-67",
        custom_fields={"Создан": "2024-01-01 10:00:00", "Тариф": "Премиум [x]", "Пусто": ""},
    )
    plain = GetCourseUser(id="8", email="plain@example.com")
    await directory.upsert([odd, plain], now=1.0)
    await directory.set_status([plain], "banned", now=2.0)
    # A later sync's batch: it knows no status, and the user changed their name.
    await directory.upsert([replace(plain, first_name="Новое")], now=3.0)

    stored_odd = await directory.by_email("odd.person@example.com")
    stored_plain = await directory.by_id("8")
    count = await directory.count()
    # Only the columns lookups and cards use are kept: the registration date, no custom fields.
    assert stored_odd == replace(
        odd,
        email="odd.person@example.com",
        phone="+79161234567",
        custom_fields={"Создан": "2024-01-01 10:00:00"},
    )
    assert stored_plain == replace(plain, first_name="Новое", status="banned")
    assert count == 2

"""Storage: migrations, and the FSM storage contract on the same SQLite file."""

from __future__ import annotations

from pathlib import Path

import aiosqlite
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import StorageKey

from bot.fsm_storage import SQLiteStorage
from services.storage.database import Database
from services.storage.dialog_state import DialogStateRepository
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


async def test_fsm_storage_contract(tmp_path: Path) -> None:
    database = await Database.open(tmp_path / "bot.sqlite3")
    storage = SQLiteStorage(DialogStateRepository(database))
    try:
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
    finally:
        await database.close()


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

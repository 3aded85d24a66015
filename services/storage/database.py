"""Opening the database: WAL journal, foreign keys, migrations up to the latest number."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from services.storage.migrations import MIGRATIONS

log = logging.getLogger(__name__)


class Database:
    """One aiosqlite connection shared by the repositories.

    aiosqlite runs every statement on one worker thread, so statements never interleave. Every
    write goes through ``transaction()`` (or ``write`` for a single statement) and every read
    through ``fetchone``/``fetchall``; all take one lock, so a read never sees another
    coroutine's uncommitted rows (which a rollback could still take back) and a rollback never
    takes someone else's statement with it. Reads inside a transaction use its connection
    directly (see ``fetch_one``/``fetch_all``).
    """

    def __init__(self, connection: aiosqlite.Connection, path: Path) -> None:
        self.connection = connection
        self.path = path
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> Database:
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        connection = await aiosqlite.connect(path, isolation_level=None)
        connection.row_factory = aiosqlite.Row
        await connection.execute("PRAGMA journal_mode=WAL")
        await connection.execute("PRAGMA synchronous=NORMAL")
        await connection.execute("PRAGMA foreign_keys=ON")
        await connection.execute("PRAGMA busy_timeout=5000")
        database = cls(connection, path)
        await database.migrate()
        return database

    async def migrate(self) -> None:
        async with self.connection.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        current = int(row[0]) if row else 0
        if current > len(MIGRATIONS):
            raise RuntimeError(
                f"database {self.path} has schema version {current}, newer than this program "
                f"knows ({len(MIGRATIONS)}); upgrade the program"
            )
        for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
            # executescript commits on its own, so the version bump rides in the same script.
            await self.connection.executescript(
                f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;"
            )
            log.info("database migrated to version %d", number)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            begin = asyncio.ensure_future(self.connection.execute("BEGIN IMMEDIATE"))
            try:
                await asyncio.shield(begin)
            except asyncio.CancelledError:
                # The connection's thread runs BEGIN all the same: undo it, or every later
                # transaction fails with "cannot start a transaction within a transaction".
                with contextlib.suppress(Exception):
                    await begin
                    await self.connection.execute("ROLLBACK")
                raise
            try:
                yield self.connection
            except BaseException:
                await self.connection.execute("ROLLBACK")
                raise
            await self.connection.execute("COMMIT")

    async def write(self, sql: str, parameters: Sequence[Any] = ()) -> None:
        """One statement that is atomic on its own (SQLite runs it as its own transaction):
        one trip to the connection's thread, where ``transaction()`` takes three."""
        async with self._lock:
            await self.connection.execute_fetchall(sql, parameters)

    async def fetchone(self, sql: str, parameters: Sequence[Any] = ()) -> aiosqlite.Row | None:
        async with self._lock:
            return await fetch_one(self.connection, sql, parameters)

    async def fetchall(self, sql: str, parameters: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        async with self._lock:
            return await fetch_all(self.connection, sql, parameters)

    async def close(self) -> None:
        await self.connection.close()


# Reads are one trip to the connection's thread (execute, fetch and close there at once), not
# three: on a directory hit the trips, not SQLite, are most of the time spent in the database.


async def fetch_one(
    connection: aiosqlite.Connection, sql: str, parameters: Sequence[Any] = ()
) -> aiosqlite.Row | None:
    """The first row; meant for queries of one row (a key, an aggregate, ``LIMIT 1``)."""
    rows = await connection.execute_fetchall(sql, parameters)
    return next(iter(rows), None)


async def fetch_all(
    connection: aiosqlite.Connection, sql: str, parameters: Sequence[Any] = ()
) -> list[aiosqlite.Row]:
    return list(await connection.execute_fetchall(sql, parameters))

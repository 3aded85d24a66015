"""Opening the database: WAL journal, foreign keys, migrations up to the latest number."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from services.errors import DatabaseUnavailable
from services.storage.migrations import MIGRATIONS

log = logging.getLogger(__name__)

FILE_MODE = 0o600
SIDE_FILES = ("-wal", "-shm", "-journal")
# Each try at a write waits up to SQLite's busy_timeout (5 s) for another connection's write
# lock; a write keeps trying this long in all before it fails with "database is locked".
LOCK_PATIENCE_SECONDS = 30.0
LOCKED_RETRY_SECONDS = 0.1


def is_database_locked(error: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY: another connection holds the lock this statement needed."""
    return error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY


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
        self.lock_patience = LOCK_PATIENCE_SECONDS  # public so a test can shorten it
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> Database:
        """Raises ``DatabaseUnavailable``, one line naming DATABASE_PATH, when the file cannot
        be created, opened or brought to the current schema."""
        connection: aiosqlite.Connection | None = None
        try:
            if str(path) != ":memory:":
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                _readable_by_owner_only(path)
            connection = await aiosqlite.connect(path, isolation_level=None)
            connection.row_factory = aiosqlite.Row
            await connection.execute("PRAGMA journal_mode=WAL")
            await connection.execute("PRAGMA synchronous=NORMAL")
            await connection.execute("PRAGMA foreign_keys=ON")
            await connection.execute("PRAGMA busy_timeout=5000")
            database = cls(connection, path)
            await database.migrate()
        except (OSError, sqlite3.Error) as error:
            if connection is not None:
                await connection.close()
            raise unavailable(path, error) from None
        except DatabaseUnavailable:
            assert connection is not None
            await connection.close()
            raise
        return database

    async def migrate(self) -> None:
        async with self.connection.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        current = int(row[0]) if row else 0
        if current > len(MIGRATIONS):
            raise DatabaseUnavailable(
                f"DATABASE_PATH {self.path} has schema version {current}, newer than this "
                f"program knows ({len(MIGRATIONS)}): upgrade the program"
            )
        for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
            # executescript commits on its own, so the version bump rides in the same script.
            await self.connection.executescript(
                f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;"
            )
            log.info("database migrated to version %d", number)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        await self._begin()
        try:
            try:
                yield self.connection
            except BaseException:
                await self.connection.execute("ROLLBACK")
                raise
            await self.connection.execute("COMMIT")
        finally:
            self._lock.release()

    async def _begin(self) -> None:
        """Take the lock and open a write transaction. While another connection holds SQLite's
        write lock (an ``sqlite3`` shell, a backup), wait it out for up to ``lock_patience``
        seconds, letting the lock go between tries so reads of this process go on."""
        loop = asyncio.get_running_loop()
        locked_since: float | None = None
        while True:
            await self._lock.acquire()
            try:
                await self._execute_begin()
            except sqlite3.OperationalError as error:
                self._lock.release()
                if not is_database_locked(error):
                    raise
                now = loop.time()
                if locked_since is None:
                    locked_since = now
                    log.warning(
                        "database is locked by another connection: waiting up to %.0fs",
                        self.lock_patience,
                    )
                if now - locked_since >= self.lock_patience:
                    raise
                await asyncio.sleep(LOCKED_RETRY_SECONDS)
                continue
            except BaseException:
                self._lock.release()
                raise
            if locked_since is not None:
                log.info("database lock released after %.1fs", loop.time() - locked_since)
            return

    async def _execute_begin(self) -> None:
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

    async def fetch_count(self, sql: str, parameters: Sequence[Any] = ()) -> int:
        """The whole number a ``COUNT(*)`` query answers."""
        row = await self.fetchone(sql, parameters)
        return int(row[0]) if row else 0

    async def fetch_time(self, sql: str, parameters: Sequence[Any] = ()) -> float | None:
        """The timestamp a ``MIN``/``MAX`` query answers; ``None`` when no row has one."""
        row = await self.fetchone(sql, parameters)
        return float(row[0]) if row and row[0] is not None else None

    async def close(self) -> None:
        await self.connection.close()


class Repository:
    """The reads and writes of some tables, over the shared database (writes made inside a
    caller's transaction take its connection instead)."""

    def __init__(self, database: Database) -> None:
        self._database = database


def _readable_by_owner_only(path: Path) -> None:
    """The database holds people's emails: the file is created 0600 (SQLite gives its -wal
    and -shm files the mode of the database file), and an existing one is narrowed to it."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    os.close(descriptor)
    for file in (path, *(path.with_name(path.name + suffix) for suffix in SIDE_FILES)):
        with contextlib.suppress(FileNotFoundError):
            if stat.S_IMODE(file.stat().st_mode) != FILE_MODE:
                file.chmod(FILE_MODE)
                log.info("database file %s made readable by its owner only", file)


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


async def insert(connection: aiosqlite.Connection, sql: str, parameters: Sequence[Any] = ()) -> int:
    """Run an ``INSERT``; the new row's ID."""
    cursor = await connection.execute(sql, parameters)
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def unavailable(path: Path, error: OSError | sqlite3.Error) -> DatabaseUnavailable:
    """The one line that stops start-up, naming DATABASE_PATH and what to look at."""
    return DatabaseUnavailable(f"DATABASE_PATH {path}: {_reason(error)}")


def _reason(error: OSError | sqlite3.Error) -> str:
    """What went wrong, in words an integrator can act on."""
    if isinstance(error, OSError):
        return f"{error.strerror or type(error).__name__} ({error.filename or 'its folder'})"
    text = str(error)
    if "locked" in text:
        return "the database is locked by another program (a backup, an sqlite3 shell?)"
    if "unable to open" in text:
        return "cannot open or create the file (check the folder exists and is writable)"
    return text

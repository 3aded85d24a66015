"""The ``instance_lock`` table: one bot process per database.

Two processes on one database would each run an outbox worker and each keep their own
one-export-at-a-time rule for GetCourse (which then answers 905 to one of them), and in polling
mode they would take each other's updates. So the second one refuses to start.

A crashed holder cannot release the lock, so it is taken over when either
- the holder ran on this host and its process is gone (or its pid is now ours: a container
  restarted under the same pid): at once, so ``Restart=on-failure`` just works; or
- its heartbeat, written every ``HEARTBEAT_INTERVAL`` seconds, is older than ``LOCK_TTL``: the
  case of a holder on another host sharing the file, whose process we cannot see."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiosqlite

from services.errors import InstanceLockHeld
from services.storage.database import Database, fetch_one, is_database_locked, unavailable

log = logging.getLogger(__name__)

LOCK_TTL = 30.0
HEARTBEAT_INTERVAL = 10.0


@dataclass(frozen=True)
class LockHolder:
    owner: str
    host: str
    pid: int
    mode: str
    acquired_at: float
    heartbeat_at: float


class InstanceLock:
    def __init__(
        self,
        database: Database,
        mode: str,
        *,
        clock: Callable[[], float] = time.time,
        host: str | None = None,
        pid: int | None = None,
        ttl: float = LOCK_TTL,
    ) -> None:
        self._database = database
        self._mode = mode
        self._clock = clock
        self.host = host or socket.gethostname()
        self.pid = pid or os.getpid()
        self._ttl = ttl
        # Tells this process's row from a previous incarnation that had the same pid.
        self.owner = secrets.token_hex(8)

    async def acquire(self) -> None:
        """Take the lock, or raise ``InstanceLockHeld`` naming the live holder
        (``DatabaseUnavailable`` when another program keeps the file locked meanwhile)."""
        try:
            await self._take()
        except sqlite3.OperationalError as error:
            if not is_database_locked(error):
                raise
            raise unavailable(self._database.path, error) from None
        log.info("database lock taken by pid %s on %s", self.pid, self.host)

    async def _take(self) -> None:
        now = self._clock()
        async with self._database.transaction() as tx:
            holder = await _holder(tx)
            if holder is not None:
                stale = self._staleness(holder, now)
                if stale is None:
                    raise InstanceLockHeld(self._held_message(holder, now))
                log.warning(
                    "taking over the database lock of pid %s on %s: %s",
                    holder.pid,
                    holder.host,
                    stale,
                )
            await tx.execute(
                "INSERT OR REPLACE INTO instance_lock "
                "(id, owner, host, pid, mode, acquired_at, heartbeat_at) "
                "VALUES (1, ?, ?, ?, ?, ?, ?)",
                (self.owner, self.host, self.pid, self._mode, now, now),
            )

    async def heartbeat(self) -> bool:
        """Write the heartbeat; ``False`` when the lock is no longer ours."""
        async with self._database.transaction() as tx:
            cursor = await tx.execute(
                "UPDATE instance_lock SET heartbeat_at = ? WHERE id = 1 AND owner = ?",
                (self._clock(), self.owner),
            )
            return cursor.rowcount == 1

    async def release(self) -> None:
        async with self._database.transaction() as tx:
            await tx.execute("DELETE FROM instance_lock WHERE id = 1 AND owner = ?", (self.owner,))
        log.info("database lock released by pid %s", self.pid)

    async def keep(self, on_lost: Callable[[], None], interval: float = HEARTBEAT_INTERVAL) -> None:
        """Heartbeat until cancelled; ``on_lost`` once another process took the lock over."""
        while True:
            await asyncio.sleep(interval)
            try:
                ours = await self.heartbeat()
            except aiosqlite.Error as error:
                # Readiness reports the database; the lock stays ours until the TTL runs out.
                log.warning("database lock heartbeat failed: %s", error)
                continue
            if not ours:
                log.error("the database lock was taken over by another process; stopping")
                on_lost()
                return

    def _staleness(self, holder: LockHolder, now: float) -> str | None:
        """Why the holder's lock may be taken over, or ``None`` while it is live."""
        silent = now - holder.heartbeat_at
        if silent > self._ttl:
            return f"no heartbeat for {silent:.0f}s"
        if holder.host == self.host and (holder.pid == self.pid or not _process_alive(holder.pid)):
            return "its process is gone"
        return None

    def _held_message(self, holder: LockHolder, now: float) -> str:
        silent = now - holder.heartbeat_at
        return (
            f"Another instance is running on the database {self._database.path}: "
            f"pid {holder.pid} on {holder.host} ({holder.mode} mode, last heartbeat "
            f"{silent:.0f}s ago). Stop it first; a crashed instance's lock is taken over "
            f"{self._ttl:.0f}s after its last heartbeat."
        )


async def _holder(tx: aiosqlite.Connection) -> LockHolder | None:
    row = await fetch_one(tx, "SELECT * FROM instance_lock WHERE id = 1")
    if row is None:
        return None
    return LockHolder(
        owner=row["owner"],
        host=row["host"],
        pid=int(row["pid"]),
        mode=row["mode"],
        acquired_at=float(row["acquired_at"]),
        heartbeat_at=float(row["heartbeat_at"]),
    )


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, under another user
    return True

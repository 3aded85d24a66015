"""The ``queued_lookups`` table: people waiting for a GetCourse export to answer their email.

A row lives from the moment the directory could not answer until the person has been told the
result: ``result`` is empty while the lookup waits, and holds the answer once it is known but
not yet delivered (a restart in between delivers it instead of asking GetCourse again)."""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from services.storage.database import Repository


@dataclass(frozen=True)
class QueuedLookup:
    telegram_id: int
    chat_id: int
    email: str
    lookup_id: int  # the lookup-gate row; also tells a replaced lookup from the current one
    queued_at: float
    result: str | None = None


class QueuedLookupRepository(Repository):
    async def put(self, lookup: QueuedLookup) -> None:
        """Queue a lookup; the person's earlier one, answered or not, is replaced by it."""
        async with self._database.transaction() as tx:
            await tx.execute(
                "INSERT OR REPLACE INTO queued_lookups "
                "(telegram_id, chat_id, email, lookup_id, queued_at) VALUES (?, ?, ?, ?, ?)",
                (
                    lookup.telegram_id,
                    lookup.chat_id,
                    lookup.email,
                    lookup.lookup_id,
                    lookup.queued_at,
                ),
            )

    async def waiting(self) -> list[QueuedLookup]:
        rows = await self._database.fetchall(
            "SELECT * FROM queued_lookups WHERE result IS NULL ORDER BY queued_at"
        )
        return [_to_lookup(row) for row in rows]

    async def oldest_waiting_since(self) -> float | None:
        return await self._database.fetch_time(
            "SELECT MIN(queued_at) FROM queued_lookups WHERE result IS NULL"
        )

    async def answered_due(self, now: float) -> list[QueuedLookup]:
        rows = await self._database.fetchall(
            "SELECT * FROM queued_lookups WHERE result IS NOT NULL AND next_attempt_at <= ? "
            "ORDER BY queued_at",
            (now,),
        )
        return [_to_lookup(row) for row in rows]

    async def next_delivery_at(self) -> float | None:
        return await self._database.fetch_time(
            "SELECT MIN(next_attempt_at) FROM queued_lookups WHERE result IS NOT NULL"
        )

    async def count_waiting(self) -> int:
        return await self._database.fetch_count(
            "SELECT COUNT(*) FROM queued_lookups WHERE result IS NULL"
        )

    @staticmethod
    async def is_waiting_in(tx: aiosqlite.Connection, lookup_id: int) -> bool:
        async with tx.execute(
            "SELECT 1 FROM queued_lookups WHERE lookup_id = ? AND result IS NULL", (lookup_id,)
        ) as cursor:
            return await cursor.fetchone() is not None

    @staticmethod
    async def answer_in(tx: aiosqlite.Connection, lookup_id: int, result: str) -> bool:
        """Record the answer of this lookup; ``False`` when it is no longer queued (the person
        sent another email or cancelled meanwhile)."""
        cursor = await tx.execute(
            "UPDATE queued_lookups SET result = ?, next_attempt_at = 0 "
            "WHERE lookup_id = ? AND result IS NULL",
            (result, lookup_id),
        )
        return cursor.rowcount > 0

    async def delivery_failed(self, lookup_id: int, retry_at: float) -> None:
        async with self._database.transaction() as tx:
            await tx.execute(
                "UPDATE queued_lookups SET next_attempt_at = ? WHERE lookup_id = ?",
                (retry_at, lookup_id),
            )

    async def remove(self, lookup_id: int) -> None:
        async with self._database.transaction() as tx:
            await tx.execute("DELETE FROM queued_lookups WHERE lookup_id = ?", (lookup_id,))

    async def cancel(self, telegram_id: int) -> QueuedLookup | None:
        """Drop the person's lookup if it still waits; returns it."""
        async with self._database.transaction() as tx:
            async with tx.execute(
                "SELECT * FROM queued_lookups WHERE telegram_id = ? AND result IS NULL",
                (telegram_id,),
            ) as cursor:
                row = await cursor.fetchone()
            if row is None:
                return None
            await tx.execute("DELETE FROM queued_lookups WHERE telegram_id = ?", (telegram_id,))
        return _to_lookup(row)


def _to_lookup(row: aiosqlite.Row) -> QueuedLookup:
    return QueuedLookup(
        telegram_id=int(row["telegram_id"]),
        chat_id=int(row["chat_id"]),
        email=str(row["email"]),
        lookup_id=int(row["lookup_id"]),
        queued_at=float(row["queued_at"]),
        result=None if row["result"] is None else str(row["result"]),
    )

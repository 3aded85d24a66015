"""The ``lookups`` table: every GetCourse lookup a person asked for, with its outcome.

It is the memory behind the attempt limits (kept across restarts and /start) and the
"lookups not found" figures."""

from __future__ import annotations

import aiosqlite

from services.storage.database import fetch_one, insert


class LookupLog:
    @staticmethod
    async def count_since(
        tx: aiosqlite.Connection, since: float, telegram_id: int | None = None
    ) -> tuple[int, float | None]:
        """How many lookups since ``since`` (of one person, or the live ones of everyone) and
        the oldest."""
        if telegram_id is None:
            row = await fetch_one(
                tx, "SELECT COUNT(*), MIN(at) FROM lookups WHERE live = 1 AND at > ?", (since,)
            )
        else:
            row = await fetch_one(
                tx,
                "SELECT COUNT(*), MIN(at) FROM lookups WHERE telegram_id = ? AND at > ?",
                (telegram_id, since),
            )
        if row is None:
            return 0, None
        return int(row[0]), (float(row[1]) if row[1] is not None else None)

    @staticmethod
    async def add(tx: aiosqlite.Connection, telegram_id: int, at: float) -> int:
        return await insert(
            tx,
            "INSERT INTO lookups (telegram_id, at, outcome) VALUES (?, ?, 'pending')",
            (telegram_id, at),
        )

    @staticmethod
    async def mark_live(tx: aiosqlite.Connection, lookup_id: int) -> None:
        await tx.execute("UPDATE lookups SET live = 1 WHERE id = ?", (lookup_id,))

    @staticmethod
    async def settle(tx: aiosqlite.Connection, lookup_id: int, outcome: str) -> None:
        await tx.execute("UPDATE lookups SET outcome = ? WHERE id = ?", (outcome, lookup_id))

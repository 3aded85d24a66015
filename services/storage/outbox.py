"""The ``outbox`` table: Salebot writes that must happen, kept until they did."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import aiosqlite

from services.models import OutboxItem, blank_salebot_variables
from services.storage.database import Repository, insert


class OutboxRepository(Repository):
    @staticmethod
    async def enqueue(
        tx: aiosqlite.Connection,
        telegram_id: int,
        variables: dict[str, str],
        now: float,
        *,
        erase_when_delivered: bool = False,
    ) -> int:
        """Queue a write; an older pending write for the same person is superseded by it.

        ``erase_when_delivered``: the row goes once delivered (the blanking write of an erased
        person, the one trace of them kept, and only until Salebot has it)."""
        stamp = _iso(now)
        # A pending erasing write that a newer write replaces is not kept as superseded.
        await tx.execute(
            "DELETE FROM outbox WHERE telegram_id = ? AND state = 'pending' "
            "AND erase_when_delivered = 1",
            (telegram_id,),
        )
        await tx.execute(
            "UPDATE outbox SET state = 'superseded', updated_at = ? "
            "WHERE telegram_id = ? AND state = 'pending'",
            (stamp, telegram_id),
        )
        return await insert(
            tx,
            "INSERT INTO outbox (telegram_id, variables, state, next_attempt_at, created_at, "
            "updated_at, erase_when_delivered) VALUES (?, ?, 'pending', ?, ?, ?, ?)",
            (
                telegram_id,
                json.dumps(variables, ensure_ascii=False),
                now,
                stamp,
                stamp,
                int(erase_when_delivered),
            ),
        )

    @staticmethod
    async def enqueue_blank(
        tx: aiosqlite.Connection, telegram_id: int, now: float, *, erase_when_delivered: bool
    ) -> int:
        """Queue the write that empties every variable of ours on the person's Salebot client:
        the one way unlinking and erasing clear Salebot. It carries no email."""
        return await OutboxRepository.enqueue(
            tx,
            telegram_id,
            blank_salebot_variables(),
            now,
            erase_when_delivered=erase_when_delivered,
        )

    async def due(self, now: float, limit: int) -> list[OutboxItem]:
        rows = await self._database.fetchall(
            "SELECT * FROM outbox WHERE state = 'pending' AND next_attempt_at <= ? "
            "ORDER BY next_attempt_at, id LIMIT ?",
            (now, limit),
        )
        return [_to_item(row) for row in rows]

    async def next_due_at(self) -> float | None:
        return await self._database.fetch_time(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'"
        )

    async def pending_count(self) -> int:
        return await self._database.fetch_count(
            "SELECT COUNT(*) FROM outbox WHERE state = 'pending'"
        )

    async def oldest_pending_since(self) -> datetime | None:
        """When the longest-waiting pending write was queued (``None`` when none waits)."""
        # The ISO stamps share one format and zone, so text order is time order.
        row = await self._database.fetchone(
            "SELECT MIN(created_at) FROM outbox WHERE state = 'pending'"
        )
        return datetime.fromisoformat(row[0]) if row and row[0] is not None else None

    async def pending_for(self, telegram_id: int) -> OutboxItem | None:
        row = await self._database.fetchone(
            "SELECT * FROM outbox WHERE state = 'pending' AND telegram_id = ?", (telegram_id,)
        )
        return _to_item(row) if row else None

    @staticmethod
    async def mark_delivered(tx: aiosqlite.Connection, item_id: int, now: float) -> None:
        await OutboxRepository.drop_erasing(tx, item_id)
        # Only a still-pending item: a newer link may have superseded it meanwhile.
        await tx.execute(
            "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, last_error = NULL, "
            "updated_at = ? WHERE id = ? AND state = 'pending'",
            (_iso(now), item_id),
        )

    @staticmethod
    async def drop_erasing(tx: aiosqlite.Connection, item_id: int) -> None:
        """Delete the item if it is an erased person's blanking write still pending."""
        await tx.execute(
            "DELETE FROM outbox WHERE id = ? AND state = 'pending' AND erase_when_delivered = 1",
            (item_id,),
        )

    @staticmethod
    async def reschedule(
        tx: aiosqlite.Connection,
        item_id: int,
        cause: str,
        error: str,
        retry_at: float,
        now: float,
    ) -> None:
        """A failed attempt that will be tried again at ``retry_at``."""
        await tx.execute(
            "UPDATE outbox SET attempts = attempts + 1, cause = ?, last_error = ?, "
            "next_attempt_at = ?, updated_at = ? WHERE id = ? AND state = 'pending'",
            (cause, error, retry_at, _iso(now), item_id),
        )

    @staticmethod
    async def give_up(
        tx: aiosqlite.Connection, item_id: int, cause: str, error: str, now: float
    ) -> None:
        """A failed attempt that no retry can mend: kept as 'failed' for the operators."""
        await tx.execute(
            "UPDATE outbox SET state = 'failed', attempts = attempts + 1, cause = ?, "
            "last_error = ?, updated_at = ? WHERE id = ? AND state = 'pending'",
            (cause, error, _iso(now), item_id),
        )

    async def retry_now(self, telegram_id: int, cause: str, now: float) -> int:
        """Make this person's pending items that wait for ``cause`` due at once."""
        async with self._database.transaction() as tx:
            cursor = await tx.execute(
                "UPDATE outbox SET next_attempt_at = ? WHERE telegram_id = ? "
                "AND state = 'pending' AND cause = ? AND next_attempt_at > ?",
                (now, telegram_id, cause, now),
            )
            return cursor.rowcount


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def _to_item(row: aiosqlite.Row) -> OutboxItem:
    return OutboxItem(
        id=int(row["id"]),
        telegram_id=int(row["telegram_id"]),
        variables=json.loads(row["variables"]),
        attempts=int(row["attempts"]),
        next_attempt_at=float(row["next_attempt_at"]),
        last_error=row["last_error"],
        cause=row["cause"],
        created_at=datetime.fromisoformat(row["created_at"]),
    )

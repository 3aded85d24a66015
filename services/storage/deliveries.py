"""The ``outbox`` table as the operators see it: each person's Salebot writes with their state,
what is waiting and why, and the one operator change to it (make waiting writes due now)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import aiosqlite

from services.storage.database import Repository

# Writes still to be made: pending ones are being retried, failed ones were given up.
WAITING_STATES = ("pending", "failed")


@dataclass(frozen=True)
class Delivery:
    """One Salebot write. ``cause`` is the outbox's name for why the last attempt failed."""

    id: int
    telegram_id: int
    state: str
    clears: bool  # the write blanks our variables (an unlink), rather than setting them
    attempts: int
    cause: str | None
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime
    updated_at: datetime


class DeliveryRepository(Repository):
    async def latest_for(self, telegram_id: int) -> Delivery | None:
        row = await self._database.fetchone(
            "SELECT * FROM outbox WHERE telegram_id = ? ORDER BY id DESC LIMIT 1", (telegram_id,)
        )
        return _to_delivery(row) if row else None

    async def history_for(self, telegram_id: int, limit: int) -> list[Delivery]:
        rows = await self._database.fetchall(
            "SELECT * FROM outbox WHERE telegram_id = ? ORDER BY id DESC LIMIT ?",
            (telegram_id, limit),
        )
        return [_to_delivery(row) for row in rows]

    async def waiting_by_cause(self) -> dict[tuple[str, str | None], int]:
        """Counts of waiting writes by (state, cause); cause ``None``: not attempted yet."""
        rows = await self._database.fetchall(
            "SELECT state, cause, COUNT(*) FROM outbox WHERE state IN (?, ?) GROUP BY state, cause",
            WAITING_STATES,
        )
        return {(row[0], row[1]): int(row[2]) for row in rows}

    async def oldest_waiting(self, limit: int) -> list[Delivery]:
        rows = await self._database.fetchall(
            "SELECT * FROM outbox WHERE state IN (?, ?) ORDER BY id LIMIT ?",
            (*WAITING_STATES, limit),
        )
        return [_to_delivery(row) for row in rows]

    @staticmethod
    async def retry_all_now(tx: aiosqlite.Connection, now: float) -> int:
        """Make every waiting write due now, the given-up ones included. A failed write is
        revived only while it is the person's latest, so it never overwrites a newer one."""
        cursor = await tx.execute(
            "UPDATE outbox SET state = 'pending', next_attempt_at = ?, updated_at = ? "
            "WHERE state = 'pending' OR (state = 'failed' AND id = "
            "(SELECT MAX(id) FROM outbox AS newer WHERE newer.telegram_id = outbox.telegram_id))",
            (now, datetime.fromtimestamp(now, UTC).isoformat()),
        )
        return cursor.rowcount

    @staticmethod
    async def withdraw(tx: aiosqlite.Connection, telegram_id: int, now: float) -> None:
        """The person's waiting writes will never be wanted again (they were unlinked)."""
        await tx.execute(
            "UPDATE outbox SET state = 'superseded', updated_at = ? "
            "WHERE telegram_id = ? AND state IN (?, ?)",
            (datetime.fromtimestamp(now, UTC).isoformat(), telegram_id, *WAITING_STATES),
        )


def _to_delivery(row: aiosqlite.Row) -> Delivery:
    variables: dict[str, str] = json.loads(row["variables"])
    return Delivery(
        id=int(row["id"]),
        telegram_id=int(row["telegram_id"]),
        state=row["state"],
        clears=bool(variables) and not any(variables.values()),
        attempts=int(row["attempts"]),
        cause=row["cause"],
        last_error=row["last_error"],
        next_attempt_at=datetime.fromtimestamp(row["next_attempt_at"], UTC),
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
    )

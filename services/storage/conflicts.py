"""The ``link_conflicts`` table: a verified email (or GetCourse user) that another Telegram
account already holds, and what was done about it."""

from __future__ import annotations

from datetime import UTC, datetime

import aiosqlite


class ConflictLog:
    @staticmethod
    async def add(
        tx: aiosqlite.Connection,
        *,
        telegram_id: int,
        holder_telegram_id: int,
        email: str,
        gc_user_id: str,
        resolution: str,
        at: float,
    ) -> None:
        await tx.execute(
            "INSERT INTO link_conflicts (telegram_id, holder_telegram_id, email, gc_user_id, "
            "resolution, at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                telegram_id,
                holder_telegram_id,
                email,
                gc_user_id,
                resolution,
                datetime.fromtimestamp(at, UTC).isoformat(),
            ),
        )

"""The ``links`` table: one row per linked Telegram account."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

import aiosqlite

from services.models import Link
from services.storage.database import Repository, fetch_all, fetch_one

GET_LINK = "SELECT * FROM links WHERE telegram_id = ?"


class LinkRepository(Repository):
    async def get(self, telegram_id: int) -> Link | None:
        row = await self._database.fetchone(GET_LINK, (telegram_id,))
        return _to_link(row) if row else None

    @staticmethod
    async def get_in(tx: aiosqlite.Connection, telegram_id: int) -> Link | None:
        """``get`` inside an open transaction."""
        row = await fetch_one(tx, GET_LINK, (telegram_id,))
        return _to_link(row) if row else None

    async def count(self) -> int:
        return await self._database.fetch_count("SELECT COUNT(*) FROM links")

    async def linked_to(self, gc_user_ids: Sequence[str]) -> list[Link]:
        """Links to any of these GetCourse users, by Telegram ID."""
        if not gc_user_ids:
            return []
        rows = await self._database.fetchall(
            "SELECT * FROM links WHERE gc_user_id IN (SELECT value FROM json_each(?)) "
            "ORDER BY telegram_id",
            (json.dumps(list(gc_user_ids)),),
        )
        return [_to_link(row) for row in rows]

    @staticmethod
    async def upsert(tx: aiosqlite.Connection, link: Link) -> None:
        """Insert or replace the link of ``link.telegram_id``; keeps the first ``linked_at``."""
        await tx.execute(
            """
            INSERT INTO links (telegram_id, email, gc_user_id, gc_name, salebot_client_id,
                               linked_at, updated_at, linked_by)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (telegram_id) DO UPDATE SET
                email = excluded.email,
                gc_user_id = excluded.gc_user_id,
                gc_name = excluded.gc_name,
                updated_at = excluded.updated_at,
                linked_by = excluded.linked_by
            """,
            (
                link.telegram_id,
                link.email,
                link.gc_user_id,
                link.gc_name,
                link.salebot_client_id,
                link.linked_at.isoformat(),
                link.updated_at.isoformat(),
                link.linked_by,
            ),
        )

    @staticmethod
    async def holders_in(
        tx: aiosqlite.Connection, email: str, gc_user_id: str, excluding: int
    ) -> list[Link]:
        """Links of other Telegram accounts to this email or this GetCourse user."""
        rows = await fetch_all(
            tx,
            "SELECT * FROM links WHERE (email = ? OR gc_user_id = ?) AND telegram_id != ? "
            "ORDER BY telegram_id",
            (email, gc_user_id, excluding),
        )
        return [_to_link(row) for row in rows]

    @staticmethod
    async def delete_in(tx: aiosqlite.Connection, telegram_id: int) -> None:
        await tx.execute("DELETE FROM links WHERE telegram_id = ?", (telegram_id,))

    @staticmethod
    async def set_salebot_client_id(
        tx: aiosqlite.Connection, telegram_id: int, client_id: int
    ) -> None:
        await tx.execute(
            "UPDATE links SET salebot_client_id = ? WHERE telegram_id = ?",
            (client_id, telegram_id),
        )


def _to_link(row: aiosqlite.Row) -> Link:
    return Link(
        telegram_id=int(row["telegram_id"]),
        email=row["email"],
        gc_user_id=row["gc_user_id"],
        gc_name=row["gc_name"],
        salebot_client_id=row["salebot_client_id"],
        linked_at=datetime.fromisoformat(row["linked_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        linked_by=row["linked_by"],
    )

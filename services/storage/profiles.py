"""The ``telegram_profiles`` table: who a Telegram account is (username, first name), as last
seen when the person wrote, so operators can look people up by ``@username``."""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from services.storage.database import Repository


@dataclass(frozen=True)
class TelegramProfile:
    telegram_id: int
    username: str | None
    first_name: str


class ProfileRepository(Repository):
    async def save(self, profile: TelegramProfile, now: float) -> None:
        async with self._database.transaction() as tx:
            await tx.execute(
                "INSERT INTO telegram_profiles (telegram_id, username, first_name, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (telegram_id) DO UPDATE SET "
                "username = excluded.username, first_name = excluded.first_name, "
                "updated_at = excluded.updated_at",
                (profile.telegram_id, profile.username, profile.first_name, now),
            )

    async def get(self, telegram_id: int) -> TelegramProfile | None:
        row = await self._database.fetchone(
            "SELECT * FROM telegram_profiles WHERE telegram_id = ?", (telegram_id,)
        )
        return _to_profile(row) if row else None

    async def ids_by_username(self, username: str) -> list[int]:
        """Telegram usernames ignore case."""
        rows = await self._database.fetchall(
            "SELECT telegram_id FROM telegram_profiles WHERE username = ? COLLATE NOCASE "
            "ORDER BY updated_at DESC",
            (username,),
        )
        return [int(row[0]) for row in rows]


def _to_profile(row: aiosqlite.Row) -> TelegramProfile:
    return TelegramProfile(
        telegram_id=int(row["telegram_id"]),
        username=row["username"],
        first_name=row["first_name"],
    )

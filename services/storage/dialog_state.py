"""The ``dialog_state`` table: a person's unfinished dialog, so it survives a restart.

Keys are opaque strings built by the caller; data is a JSON object."""

from __future__ import annotations

import json
from typing import Any

import aiosqlite

from services.storage.database import Repository


class DialogStateRepository(Repository):
    async def get_state(self, key: str) -> str | None:
        row = await self._database.fetchone("SELECT state FROM dialog_state WHERE key = ?", (key,))
        return row["state"] if row else None

    async def get_data(self, key: str) -> dict[str, Any]:
        row = await self._database.fetchone("SELECT data FROM dialog_state WHERE key = ?", (key,))
        if row is None:
            return {}
        data: dict[str, Any] = json.loads(row["data"])
        return data

    async def set_state(self, key: str, state: str | None) -> None:
        async with self._database.transaction() as tx:
            await tx.execute(
                "INSERT INTO dialog_state (key, state) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET state = excluded.state",
                (key, state),
            )
            await _drop_if_empty(tx, key)

    async def set_data(self, key: str, data: dict[str, Any]) -> None:
        async with self._database.transaction() as tx:
            await tx.execute(
                "INSERT INTO dialog_state (key, data) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET data = excluded.data",
                (key, json.dumps(data, ensure_ascii=False)),
            )
            await _drop_if_empty(tx, key)


async def _drop_if_empty(tx: aiosqlite.Connection, key: str) -> None:
    # A cleared dialog leaves no row behind, so the table only holds live dialogs.
    await tx.execute(
        "DELETE FROM dialog_state WHERE key = ? AND state IS NULL AND data = '{}'", (key,)
    )

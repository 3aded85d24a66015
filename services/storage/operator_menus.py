"""The ``operator_menus`` table: the command menus the bot set for operators.

Telegram keeps a per-chat menu until it is replaced or deleted, and cannot list them; this table
is how the bot knows, at its next start, whose menu to take back once someone left
``OPERATOR_IDS`` (or the operator chat changed). ``chat_id`` equal to ``telegram_id`` is the
operator's private chat with the bot; any other is the operator chat, menu for that member."""

from __future__ import annotations

from collections.abc import Iterable

from services.storage.database import Repository

OperatorMenu = tuple[int, int]  # (telegram_id, chat_id)


class OperatorMenuRepository(Repository):
    async def all(self) -> set[OperatorMenu]:
        rows = await self._database.fetchall("SELECT telegram_id, chat_id FROM operator_menus")
        return {(row["telegram_id"], row["chat_id"]) for row in rows}

    async def replace(self, menus: Iterable[OperatorMenu]) -> None:
        async with self._database.transaction() as tx:
            await tx.execute("DELETE FROM operator_menus")
            await tx.executemany(
                "INSERT INTO operator_menus (telegram_id, chat_id) VALUES (?, ?)", sorted(menus)
            )

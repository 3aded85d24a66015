"""The ``link_events`` table: links made, changed and removed, each with its time and, when an
operator did it, who. Statistics and a person's history read it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum

import aiosqlite

from services.storage.database import Repository


class LinkEventKind(StrEnum):
    LINKED = "linked"  # a first link
    RELINKED = "relinked"  # the link moved to another email
    UNLINKED = "unlinked"  # an operator removed it


@dataclass(frozen=True)
class LinkEvent:
    at: datetime
    kind: LinkEventKind
    telegram_id: int
    operator_id: int | None


class LinkEventRepository(Repository):
    @staticmethod
    async def record(
        tx: aiosqlite.Connection,
        kind: LinkEventKind,
        telegram_id: int,
        at: float,
        operator_id: int | None = None,
    ) -> None:
        await tx.execute(
            "INSERT INTO link_events (at, kind, telegram_id, operator_id) VALUES (?, ?, ?, ?)",
            (at, kind, telegram_id, operator_id),
        )

    async def counts_since(self, since: float) -> dict[LinkEventKind, int]:
        rows = await self._database.fetchall(
            "SELECT kind, COUNT(*) FROM link_events WHERE at >= ? GROUP BY kind", (since,)
        )
        counts = dict.fromkeys(LinkEventKind, 0)
        counts.update({LinkEventKind(row[0]): int(row[1]) for row in rows})
        return counts

    async def per_day(self, since: float) -> dict[tuple[date, LinkEventKind], int]:
        """Events per UTC day and kind, from ``since`` on."""
        rows = await self._database.fetchall(
            "SELECT date(at, 'unixepoch') AS day, kind, COUNT(*) FROM link_events "
            "WHERE at >= ? GROUP BY day, kind",
            (since,),
        )
        return {(date.fromisoformat(row[0]), LinkEventKind(row[1])): int(row[2]) for row in rows}

    async def for_person(self, telegram_id: int, limit: int) -> list[LinkEvent]:
        rows = await self._database.fetchall(
            "SELECT * FROM link_events WHERE telegram_id = ? ORDER BY id DESC LIMIT ?",
            (telegram_id, limit),
        )
        return [
            LinkEvent(
                at=datetime.fromtimestamp(row["at"], UTC),
                kind=LinkEventKind(row["kind"]),
                telegram_id=int(row["telegram_id"]),
                operator_id=row["operator_id"],
            )
            for row in rows
        ]

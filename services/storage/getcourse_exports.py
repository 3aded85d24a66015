"""The ``getcourse_exports`` table: every export we started, until it was collected.

Export IDs cannot be listed in GetCourse, so a restart can only collect an export it wrote down;
collecting it costs one poll instead of a new start (and avoids error 905)."""

from __future__ import annotations

from dataclasses import dataclass

from services.storage.database import Repository


@dataclass(frozen=True)
class StartedExport:
    export_id: int
    email: str
    started_at: float


class ExportLog(Repository):
    async def open_export_for(self, email: str, since: float) -> StartedExport | None:
        row = await self._database.fetchone(
            "SELECT export_id, email, started_at FROM getcourse_exports "
            "WHERE email = ? AND finished_at IS NULL AND started_at >= ? "
            "ORDER BY started_at DESC LIMIT 1",
            (email, since),
        )
        if row is None:
            return None
        return StartedExport(int(row["export_id"]), row["email"], float(row["started_at"]))

    async def started(self, export_id: int, email: str, now: float) -> None:
        async with self._database.transaction() as tx:
            await tx.execute(
                "INSERT OR REPLACE INTO getcourse_exports (export_id, email, started_at) "
                "VALUES (?, ?, ?)",
                (export_id, email, now),
            )

    async def finished(self, export_id: int, outcome: str, now: float) -> None:
        async with self._database.transaction() as tx:
            await tx.execute(
                "UPDATE getcourse_exports SET finished_at = ?, outcome = ? WHERE export_id = ?",
                (now, outcome, export_id),
            )

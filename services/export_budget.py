"""A persisted ledger of GetCourse export-API requests.

GetCourse allows 100 export-API requests per rolling 2 hours per school, polls included, and
going over breaks every other integration of the school. The ledger records each request we
send and refuses one that would take this bot past its configured share."""

from __future__ import annotations

import time
from collections.abc import Callable

from services.errors import GetCourseBudgetExhausted
from services.storage.database import Database, fetch_one
from services.storage.getcourse_exports import ExportLog

WINDOW_SECONDS = 2 * 60 * 60
PAUSE_NAME = "getcourse_export"


class ExportBudget:
    def __init__(
        self, database: Database, limit: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._database = database
        self.limit = limit
        self._clock = clock
        # The exports we started belong to the same bookkeeping of our export-API use.
        self.exports = ExportLog(database)

    async def spend(self, kind: str) -> None:
        """Record one request about to be sent, or raise if the window has no room for it
        or export traffic is paused."""
        now = self._clock()
        async with self._database.transaction() as tx:
            pause = await fetch_one(
                tx, "SELECT until, cause FROM service_pauses WHERE name = ?", (PAUSE_NAME,)
            )
            if pause is not None and pause["until"] > now:
                raise GetCourseBudgetExhausted(
                    f"export traffic paused ({pause['cause']})", retry_after=pause["until"] - now
                )
            await tx.execute(
                "DELETE FROM getcourse_export_requests WHERE at <= ?", (now - WINDOW_SECONDS,)
            )
            async with tx.execute(
                "SELECT COUNT(*), MIN(at) FROM getcourse_export_requests"
            ) as cursor:
                row = await cursor.fetchone()
            used, oldest = (int(row[0]), row[1]) if row else (0, None)
            if used >= self.limit:
                # "is not None": a timestamp of 0.0 (an injected clock) is still the oldest request.
                retry_after = (
                    float(oldest) + WINDOW_SECONDS - now if oldest is not None else WINDOW_SECONDS
                )
                raise GetCourseBudgetExhausted(
                    f"export budget spent: {used} of {self.limit} requests in the last 2 hours",
                    retry_after=max(retry_after, 0.0),
                )
            await tx.execute(
                "INSERT INTO getcourse_export_requests (at, kind) VALUES (?, ?)", (now, kind)
            )

    async def pause(self, seconds: float, cause: str) -> None:
        """Stop all export traffic for ``seconds``; kept in the database, so a restart does
        not resume hammering an account that GetCourse has cut off."""
        now = self._clock()
        async with self._database.transaction() as tx:
            await tx.execute(
                "INSERT INTO service_pauses (name, until, cause) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET until = MAX(until, excluded.until), "
                "cause = excluded.cause",
                (PAUSE_NAME, now + seconds, cause),
            )

    async def paused_until(self) -> float | None:
        row = await self._database.fetchone(
            "SELECT until FROM service_pauses WHERE name = ?", (PAUSE_NAME,)
        )
        return float(row["until"]) if row and row["until"] > self._clock() else None

    async def used(self) -> int:
        """Requests spent in the current window."""
        row = await self._database.fetchone(
            "SELECT COUNT(*) FROM getcourse_export_requests WHERE at > ?",
            (self._clock() - WINDOW_SECONDS,),
        )
        return int(row[0]) if row else 0

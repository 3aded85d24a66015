"""A persisted ledger of GetCourse export-API requests.

GetCourse allows 100 export-API requests per rolling 2 hours per school, polls included, and
going over breaks every other integration of the school. The ledger records each request we
send and refuses one that would take this bot past its configured share."""

from __future__ import annotations

import time
from collections.abc import Callable

from services.errors import GetCourseBudgetExhausted
from services.storage.database import Database

WINDOW_SECONDS = 2 * 60 * 60


class ExportBudget:
    def __init__(
        self, database: Database, limit: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._database = database
        self.limit = limit
        self._clock = clock

    async def spend(self, kind: str) -> None:
        """Record one request about to be sent, or raise if the window has no room for it."""
        now = self._clock()
        async with self._database.transaction() as tx:
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

    async def used(self) -> int:
        """Requests spent in the current window."""
        row = await self._database.fetchone(
            "SELECT COUNT(*) FROM getcourse_export_requests WHERE at > ?",
            (self._clock() - WINDOW_SECONDS,),
        )
        return int(row[0]) if row else 0

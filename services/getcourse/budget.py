"""Persisted ledgers of GetCourse API requests: each records the requests we send in a rolling
window and refuses one that would take this bot past its configured share.

The export ledger: GetCourse allows 100 export-API requests per rolling 2 hours per school,
polls included, and going over breaks every other integration of the school. The import API
has limits of its own and keeps its own ledger (``ImportBudget``), never this budget."""

from __future__ import annotations

import time
from collections.abc import Callable

from services.errors import GetCourseBudgetExhausted
from services.storage.database import Database, fetch_one
from services.storage.getcourse_exports import ExportLog

WINDOW_SECONDS = 2 * 60 * 60
PAUSE_NAME = "getcourse_export"
IMPORT_PAUSE_NAME = "getcourse_import"


class RequestLedger:
    """One API's requests in its own table (``at``, ``kind``) and its own pause row."""

    table = "getcourse_export_requests"
    pause_name = PAUSE_NAME
    label = "export"

    def __init__(
        self, database: Database, limit: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._database = database
        self.limit = limit
        self._clock = clock

    async def spend(self, kind: str) -> None:
        """Record one request about to be sent, or raise if the window has no room for it
        or this API's traffic is paused."""
        now = self._clock()
        async with self._database.transaction() as tx:
            pause = await fetch_one(
                tx, "SELECT until, cause FROM service_pauses WHERE name = ?", (self.pause_name,)
            )
            if pause is not None and pause["until"] > now:
                raise GetCourseBudgetExhausted(
                    f"{self.label} traffic paused ({pause['cause']})",
                    retry_after=pause["until"] - now,
                )
            await tx.execute(f"DELETE FROM {self.table} WHERE at <= ?", (now - WINDOW_SECONDS,))
            async with tx.execute(f"SELECT COUNT(*), MIN(at) FROM {self.table}") as cursor:
                row = await cursor.fetchone()
            used, oldest = (int(row[0]), row[1]) if row else (0, None)
            if used >= self.limit:
                raise GetCourseBudgetExhausted(
                    f"{self.label} budget spent: {used} of {self.limit} requests "
                    "in the last 2 hours",
                    retry_after=seconds_until_room(oldest, WINDOW_SECONDS, now),
                )
            await tx.execute(f"INSERT INTO {self.table} (at, kind) VALUES (?, ?)", (now, kind))

    async def pause(self, seconds: float, cause: str) -> None:
        """Stop all of this API's traffic for ``seconds``; kept in the database, so a restart does
        not resume hammering an account that GetCourse has cut off."""
        now = self._clock()
        async with self._database.transaction() as tx:
            await tx.execute(
                "INSERT INTO service_pauses (name, until, cause) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET until = MAX(until, excluded.until), "
                "cause = excluded.cause",
                (self.pause_name, now + seconds, cause),
            )

    async def paused_until(self) -> float | None:
        row = await self._database.fetchone(
            "SELECT until FROM service_pauses WHERE name = ?", (self.pause_name,)
        )
        return float(row["until"]) if row and row["until"] > self._clock() else None

    async def used(self) -> int:
        """Requests spent in the current window."""
        return await self._database.fetch_count(
            f"SELECT COUNT(*) FROM {self.table} WHERE at > ?",
            (self._clock() - WINDOW_SECONDS,),
        )


def seconds_until_room(oldest: float | None, window: float, now: float) -> float:
    """When a full rolling ``window`` has room again: once its ``oldest`` entry leaves it
    (the whole window when that is unknown)."""
    # "is not None": a timestamp of 0.0 (an injected clock) is still the oldest entry.
    return max(oldest + window - now if oldest is not None else window, 0.0)


class ExportBudget(RequestLedger):
    def __init__(
        self, database: Database, limit: int, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(database, limit, clock)
        # The exports we started belong to the same bookkeeping of our export-API use.
        self.exports = ExportLog(database)


class ImportBudget(RequestLedger):
    """The import API's own ledger (``POST /pl/api/users``): field writes spend it."""

    table = "getcourse_import_requests"
    pause_name = IMPORT_PAUSE_NAME
    label = "import"

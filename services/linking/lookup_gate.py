"""Limits on GetCourse lookups: per person (so nobody can probe a school's students at speed),
and how many lookups everyone together may send straight to GetCourse (the Tech API) per hour.
The second never refuses anyone: past it, a lookup waits for an export with everyone else (a
launch day must not lock students out). Directory hits cost GetCourse nothing and queued misses
are paced by the export budget, so neither counts towards it. Attempts are kept in the database,
so neither a restart nor /start resets them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from services.errors import TooManyAttempts
from services.getcourse.budget import seconds_until_room
from services.storage.database import Database
from services.storage.lookups import LookupLog

HOUR = 3600.0


@dataclass(frozen=True)
class LookupLimits:
    per_person_per_hour: int = 5
    everyone_per_hour: int = 600


class LookupGate:
    def __init__(
        self, database: Database, limits: LookupLimits, clock: Callable[[], float] = time.time
    ) -> None:
        self._database = database
        self._limits = limits
        self._clock = clock

    async def admit(self, telegram_id: int) -> int:
        """Count this person's lookup in, or raise ``TooManyAttempts``; returns its ID."""
        now = self._clock()
        async with self._database.transaction() as tx:
            mine, my_oldest = await LookupLog.count_since(tx, now - HOUR, telegram_id)
            if mine >= self._limits.per_person_per_hour:
                raise TooManyAttempts(
                    f"telegram {telegram_id}: {mine} lookups in the last hour",
                    retry_after=seconds_until_room(my_oldest, HOUR, now),
                )
            return await LookupLog.add(tx, telegram_id, now)

    async def admit_live(self, lookup_id: int) -> bool:
        """Whether this lookup may ask GetCourse directly; ``False`` when everyone together did
        so ``everyone_per_hour`` times this hour (it then waits for an export)."""
        now = self._clock()
        async with self._database.transaction() as tx:
            everyone, _ = await LookupLog.count_since(tx, now - HOUR)
            if everyone >= self._limits.everyone_per_hour:
                return False
            await LookupLog.mark_live(tx, lookup_id)
            return True

    async def asked_since(self, since: float) -> int:
        """How many lookups anyone asked for since ``since`` (hits and misses alike)."""
        return await self._database.fetch_count(
            "SELECT COUNT(*) FROM lookups WHERE at > ?", (since,)
        )

    async def settle(self, lookup_id: int, outcome: str) -> None:
        async with self._database.transaction() as tx:
            await LookupLog.settle(tx, lookup_id, outcome)

"""Retention: traces of people older than ``RETENTION_DAYS`` are deleted by a daily cleanup.

``EXPIRIES`` declares what expires and when; a new kind of trace (a table of codes, of events)
is one more line there. Links and what a live link needs are never touched."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from services.storage.database import Database

log = logging.getLogger(__name__)

DAY = 24 * 3600.0
# The cleanup runs this long after start-up (not at once: a restart loop must not make it
# run over and over), then once a day.
FIRST_RUN_AFTER = 60.0


@dataclass(frozen=True)
class Expiry:
    """Rows of ``table`` matching ``where`` expire. Named parameters: ``:cutoff`` (Unix
    seconds) and ``:cutoff_iso`` (the same moment as the ISO text the tables store)."""

    table: str
    where: str


# In this order: events go before the profiles of people with no event left.
EXPIRIES: tuple[Expiry, ...] = (
    Expiry("lookups", "at < :cutoff"),
    # Writes that are done with: delivered, or replaced by a newer one. Waiting and failed
    # writes stay until they are delivered or an operator deals with them.
    Expiry("outbox", "state IN ('delivered', 'superseded') AND updated_at < :cutoff_iso"),
    Expiry(
        "link_events",
        "at < :cutoff AND telegram_id NOT IN (SELECT telegram_id FROM links)",
    ),
    Expiry(
        "telegram_profiles",
        "updated_at < :cutoff AND telegram_id NOT IN (SELECT telegram_id FROM links) "
        "AND telegram_id NOT IN (SELECT telegram_id FROM link_events)",
    ),
    Expiry("link_conflicts", "(julianday(at) - 2440587.5) * 86400.0 < :cutoff"),
    # Exports collected long ago: they only remember which email was looked up.
    Expiry("getcourse_exports", "finished_at IS NOT NULL AND finished_at < :cutoff"),
    # Proofs never finished (their codes long expired): the typed email goes with them.
    Expiry("ownership_proofs", "created_at < :cutoff"),
    # Both directions (issue 13): GetCourse field writes that are done with; GetCourse events
    # that expired waiting for a link, or whose callback is done with (their callbacks go with
    # them); the linked-message callbacks that are done with. Waiting and stopped ones stay.
    Expiry(
        "getcourse_field_writes",
        "state IN ('delivered', 'superseded') AND updated_at < :cutoff",
    ),
    Expiry(
        "getcourse_events",
        "received_at < :cutoff AND (state = 'expired' OR (state = 'queued' AND NOT EXISTS "
        "(SELECT 1 FROM salebot_callbacks c WHERE c.event_row = getcourse_events.id "
        "AND c.state IN ('pending', 'sending', 'failed'))))",
    ),
    Expiry(
        "salebot_callbacks",
        "state IN ('delivered', 'superseded', 'uncertain') AND updated_at < :cutoff",
    ),
)


class RetentionCleanup:
    def __init__(
        self,
        database: Database,
        days: int,
        *,
        expiries: Sequence[Expiry] = EXPIRIES,
        every: float = DAY,
        first_after: float = FIRST_RUN_AFTER,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._database = database
        self._keep = days * DAY
        self._expiries = expiries
        self._every = every
        self._first_after = first_after
        self._clock = clock
        self._stopped = asyncio.Event()

    def stop(self) -> None:
        self._stopped.set()

    async def run(self) -> None:
        """Clean up after ``first_after``, then every ``every`` seconds, until stopped."""
        wait = self._first_after
        while not self._stopped.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), wait)
                return
            try:
                await self.clean()
            except Exception:
                # A failed cleanup is tried again tomorrow; the bot goes on.
                log.exception("retention cleanup failed")
            wait = self._every

    async def clean(self) -> dict[str, int]:
        """Delete every expired row now, in one transaction; returns the rows per table."""
        cutoff = self._clock() - self._keep
        parameters = {
            "cutoff": cutoff,
            "cutoff_iso": datetime.fromtimestamp(cutoff, UTC).isoformat(),
        }
        deleted: dict[str, int] = {}
        async with self._database.transaction() as tx:
            for expiry in self._expiries:
                cursor = await tx.execute(
                    f"DELETE FROM {expiry.table} WHERE {expiry.where}", parameters
                )
                if cursor.rowcount > 0:
                    deleted[expiry.table] = deleted.get(expiry.table, 0) + cursor.rowcount
        log.info(
            "retention cleanup: %s older than %d days deleted",
            ", ".join(f"{count} {table}" for table, count in deleted.items()) or "nothing",
            round(self._keep / DAY),
        )
        return deleted

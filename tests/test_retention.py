"""The daily cleanup (RETENTION_DAYS): traces older than the retention period go, the rest
stays, and nothing a live link needs is touched. Rows are written by the repositories the
bot itself uses, at chosen moments."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from services.models import Link
from services.privacy.retention import DAY, RetentionCleanup
from services.storage.conflicts import ConflictLog
from services.storage.database import Database
from services.storage.getcourse_exports import ExportLog
from services.storage.link_events import LinkEventKind, LinkEventRepository
from services.storage.links import LinkRepository
from services.storage.lookups import LookupLog
from services.storage.outbox import OutboxRepository
from services.storage.profiles import ProfileRepository, TelegramProfile
from tests.conftest import eventually

NOW = 1_800_000_000.0
OLD = NOW - 200 * DAY  # past the default 180 days
RECENT = NOW - 10 * DAY
LINKED, UNLINKED, NEWCOMER, FORGOTTEN, WAITING = 1001, 1002, 1003, 1004, 1005


async def fill(database: Database) -> None:
    """LINKED has been linked for long; UNLINKED was linked and unlinked long ago; NEWCOMER
    wrote lately and FORGOTTEN long ago, neither ever linked; WAITING has an old write that
    never got through."""
    profiles = ProfileRepository(database)
    for person, at in ((LINKED, OLD), (UNLINKED, OLD), (NEWCOMER, RECENT), (FORGOTTEN, OLD)):
        await profiles.save(TelegramProfile(person, f"user{person}", "Name"), at)
    exports = ExportLog(database)
    await exports.started(1, "old@example.com", OLD)
    await exports.finished(1, "found", OLD)
    await exports.started(2, "recent@example.com", RECENT)
    await exports.finished(2, "found", RECENT)
    await exports.started(3, "uncollected@example.com", OLD)
    async with database.transaction() as tx:
        stamp = datetime.fromtimestamp(OLD, UTC)
        link = Link(LINKED, "linked@example.com", "42", "", None, stamp, stamp)
        await LinkRepository.upsert(tx, link)
        await LinkEventRepository.record(tx, LinkEventKind.LINKED, LINKED, OLD)
        for kind in (LinkEventKind.LINKED, LinkEventKind.UNLINKED):
            await LinkEventRepository.record(tx, kind, UNLINKED, OLD)
        old_write = await OutboxRepository.enqueue(tx, LINKED, {"client.email": "x"}, OLD)
        await OutboxRepository.mark_delivered(tx, old_write, OLD)
        await OutboxRepository.enqueue(tx, WAITING, {"client.email": "y"}, OLD)
        for person, at in ((LINKED, OLD), (NEWCOMER, RECENT), (FORGOTTEN, OLD)):
            await LookupLog.add(tx, person, at)
        for at in (OLD, RECENT):
            await ConflictLog.add(
                tx,
                telegram_id=NEWCOMER,
                holder_telegram_id=LINKED,
                email="linked@example.com",
                gc_user_id="42",
                resolution="refused",
                at=at,
            )


async def people(database: Database, table: str) -> list[int]:
    rows = await database.fetchall(f"SELECT telegram_id FROM {table} ORDER BY telegram_id")
    return [int(row[0]) for row in rows]


async def test_cleanup_deletes_what_is_old_and_keeps_the_rest(database: Database) -> None:
    await fill(database)
    cleanup = RetentionCleanup(database, days=180, clock=lambda: NOW)

    deleted = await cleanup.clean()

    assert deleted == {
        "lookups": 2,
        "outbox": 1,
        "link_events": 2,
        "telegram_profiles": 2,
        "link_conflicts": 1,
        "getcourse_exports": 1,
    }
    assert await people(database, "links") == [LINKED]
    assert await people(database, "lookups") == [NEWCOMER]
    assert await people(database, "outbox") == [WAITING]  # not delivered: kept
    assert await people(database, "link_events") == [LINKED]  # still linked: its history stays
    assert await people(database, "telegram_profiles") == [LINKED, NEWCOMER]
    conflicts = await database.fetchall("SELECT at FROM link_conflicts")
    assert [row["at"] for row in conflicts] == [datetime.fromtimestamp(RECENT, UTC).isoformat()]
    exports = await database.fetchall("SELECT export_id FROM getcourse_exports ORDER BY 1")
    assert [row[0] for row in exports] == [2, 3]  # recent, and one never collected

    assert await cleanup.clean() == {}  # nothing left to expire


async def test_a_longer_retention_keeps_more(database: Database) -> None:
    await fill(database)
    assert await RetentionCleanup(database, days=365, clock=lambda: NOW).clean() == {}


async def test_the_cleanup_loop_runs_until_stopped(database: Database) -> None:
    await fill(database)
    cleanup = RetentionCleanup(database, days=180, first_after=0, every=3600, clock=lambda: NOW)
    task = asyncio.create_task(cleanup.run())

    async def cleaned() -> bool:
        return await people(database, "lookups") == [NEWCOMER]

    await eventually(cleaned)
    cleanup.stop()
    await asyncio.wait_for(task, 5)

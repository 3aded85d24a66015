"""``python -m bot sync [--full]``: fill the local GetCourse directory now, one line per window
(and, for a full sync, per status export).

It takes the database's instance lock like the bot does: while the bot runs, operators use
``/sync`` there instead (two processes would each hold an export slot of their own)."""

from __future__ import annotations

from bot.app import create_services
from bot.settings import Settings
from services.errors import GetCourseError, InstanceLockHeld
from services.getcourse.directory_sync import SyncKind, SyncProgress
from services.storage.instance_lock import InstanceLock


async def run_sync(settings: Settings, full: bool) -> int:
    """0 when the sync finished; 3 when it stopped to spare the export budget (run it again
    later: it resumes); 1 when it could not run or GetCourse failed."""
    kind = SyncKind.FULL if full else SyncKind.INCREMENTAL
    services = await create_services(settings)
    try:
        lock = InstanceLock(services.database, "sync")
        try:
            await lock.acquire()
        except InstanceLockHeld as error:
            print(f"FAIL  {error}. While the bot runs, use /sync in the bot.")
            return 1
        try:
            result = await services.sync.run(kind, progress=_print_progress)
        except GetCourseError as error:
            print(f"FAIL  {kind} sync stopped: {error}. Run it again to resume.")
            return 1
        finally:
            await lock.release()
    finally:
        await services.close()
    if not result.complete:
        print(f"PAUSED {kind} sync: export budget kept for lookups; run it again later to resume")
        return 3
    print(
        f"OK    {kind} sync: {result.rows} users, {result.removed} removed, "
        f"{result.orphaned_links} links to users gone from GetCourse, "
        f"{result.blocked_links} links to users newly banned or deactivated"
    )
    return 0


async def _print_progress(progress: SyncProgress) -> None:
    if progress.status is not None:
        print(f"      {progress.status} users: asking GetCourse", flush=True)
        return
    print(
        f"      registrations since {progress.day} read "
        f"({progress.days_done}/{progress.days_total} days): {progress.rows} users so far",
        flush=True,
    )

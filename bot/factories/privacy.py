"""The privacy context: erasure (/forget and /erase) and the retention cleanup."""

from __future__ import annotations

from bot.factories.shared import Shared
from bot.settings import Settings
from services.console.profiles import ProfileBook
from services.linking.bridge import LinkFollowUps
from services.privacy.erasure import ErasureService
from services.privacy.retention import RetentionCleanup
from services.reachability import Reachability
from services.salebot.outbox import OutboxWorker
from services.storage.database import Database


def erasure_service(
    shared: Shared,
    outbox: OutboxWorker,
    follow_ups: LinkFollowUps,
    profiles: ProfileBook,
    reachability: Reachability,
) -> ErasureService:
    # The in-memory copies of a person (profiles, reachability) forget them too.
    return ErasureService(
        shared.database,
        on_enqueued=outbox.wake,
        forget_cached=(profiles.forget, reachability.forget),
        follow_ups=follow_ups,
    )


def retention_cleanup(settings: Settings, database: Database) -> RetentionCleanup:
    return RetentionCleanup(database, settings.retention_days)

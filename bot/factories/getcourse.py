"""The GetCourse context: the export, Tech and import API clients, their budgets, the local
directory every lookup reads first, and the sync that fills it."""

from __future__ import annotations

import httpx

from bot.factories.shared import http_client
from bot.settings import Settings
from services.directory import DirectoryMirror
from services.directory_sync import DirectorySync, SyncPolicy, SyncScheduler
from services.export_budget import ExportBudget, ImportBudget
from services.getcourse import GetCourseClient, PollSchedule
from services.getcourse_import import GetCourseImportClient
from services.getcourse_tech import GetCourseTechClient
from services.health import CallTracker
from services.notifications import Notifier
from services.storage.database import Database
from services.storage.directory import DirectoryRepository
from services.storage.getcourse_quirks import QuirkRepository


def getcourse_http(settings: Settings) -> httpx.AsyncClient:
    return http_client(settings.getcourse_url, httpx.Timeout(30.0, connect=10.0))


def budgets(settings: Settings, database: Database) -> tuple[ExportBudget, ImportBudget]:
    """The export API's ledger and the import API's own (field writes)."""
    return (
        ExportBudget(database, settings.getcourse_export_budget),
        ImportBudget(database, settings.getcourse_import_budget),
    )


def export_client(
    settings: Settings,
    database: Database,
    http: httpx.AsyncClient,
    budget: ExportBudget,
    calls: CallTracker,
    notifier: Notifier,
) -> GetCourseClient:
    poll = PollSchedule(
        first_delay=settings.getcourse_poll_first_delay,
        max_interval=settings.getcourse_poll_max_interval,
        give_up_after=settings.getcourse_lookup_timeout,
    )
    key = settings.getcourse_api_key.get_secret_value()
    quirks = QuirkRepository(database)
    return GetCourseClient(http, key, budget, poll, calls=calls, notifier=notifier, quirks=quirks)


def import_client(
    settings: Settings, http: httpx.AsyncClient, budget: ImportBudget, calls: CallTracker
) -> GetCourseImportClient:
    return GetCourseImportClient(http, settings.getcourse_api_key.get_secret_value(), budget, calls)


def directory_mirror(
    settings: Settings,
    database: Database,
    http: httpx.AsyncClient,
    exports: GetCourseClient,
    calls: CallTracker,
    notifier: Notifier,
) -> DirectoryMirror:
    """Every lookup: the local copy, then the Tech API (when its key is set) or an export."""
    tech = None
    if settings.getcourse_tech_api_key is not None:
        key = settings.getcourse_tech_api_key.get_secret_value()
        tech = GetCourseTechClient(http, key, notifier=notifier, calls=calls)
    repository = DirectoryRepository(database)
    return DirectoryMirror(repository, tech, exports, settings.getcourse_not_found_ttl)


def directory_sync(
    settings: Settings,
    database: Database,
    exports: GetCourseClient,
    budget: ExportBudget,
    notifier: Notifier,
) -> DirectorySync:
    policy = SyncPolicy(
        window_days=settings.getcourse_sync_window_days,
        since=settings.getcourse_sync_since,
        reserve=settings.getcourse_sync_reserve,
        window_users=settings.getcourse_sync_window_users,
    )
    return DirectorySync(database, exports, budget, policy, notifier=notifier)


def sync_scheduler(settings: Settings, sync: DirectorySync) -> SyncScheduler:
    return SyncScheduler(
        sync,
        full_every=settings.getcourse_full_sync_hours * 3600,
        incremental_every=settings.getcourse_incremental_sync_minutes * 60,
    )

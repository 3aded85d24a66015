"""The GetCourse context: the export, Tech and import API clients, their budgets, the local
directory every lookup reads first, and the sync that fills it."""

from __future__ import annotations

from dataclasses import dataclass

from bot.factories.shared import Shared
from bot.settings import Settings
from services.getcourse.budget import ExportBudget, ImportBudget
from services.getcourse.coalescing import CoalescedExports
from services.getcourse.directory import DirectoryMirror
from services.getcourse.directory_sync import DirectorySync, SyncPolicy, SyncScheduler
from services.getcourse.exports import GetCourseClient, PollSchedule
from services.getcourse.import_api import GetCourseImportClient
from services.getcourse.tech_api import GetCourseTechClient
from services.storage.directory import DirectoryRepository
from services.storage.getcourse_quirks import QuirkRepository


@dataclass(frozen=True)
class GetCourse:
    budget: ExportBudget
    import_budget: ImportBudget
    exports: GetCourseClient
    importer: GetCourseImportClient
    directory: DirectoryMirror
    sync: DirectorySync
    coalesced: CoalescedExports  # directory misses answered by as few exports as can answer them


def build_getcourse(shared: Shared) -> GetCourse:
    settings, database, http = shared.settings, shared.database, shared.getcourse_http
    key = settings.getcourse_api_key.get_secret_value()
    budget = ExportBudget(database, settings.getcourse_export_budget)
    import_budget = ImportBudget(database, settings.getcourse_import_budget)
    poll = PollSchedule(
        first_delay=settings.getcourse_poll_first_delay,
        max_interval=settings.getcourse_poll_max_interval,
        give_up_after=settings.getcourse_lookup_timeout,
    )
    exports = GetCourseClient(
        http,
        key,
        budget,
        poll,
        calls=shared.calls,
        notifier=shared.notifier,
        quirks=QuirkRepository(database),
    )
    tech = None
    if settings.getcourse_tech_api_key is not None:
        tech_key = settings.getcourse_tech_api_key.get_secret_value()
        tech = GetCourseTechClient(http, tech_key, notifier=shared.notifier, calls=shared.calls)
    policy = SyncPolicy(
        window_days=settings.getcourse_sync_window_days,
        since=settings.getcourse_sync_since,
        reserve=settings.getcourse_sync_reserve,
        window_users=settings.getcourse_sync_window_users,
    )
    sync = DirectorySync(database, exports, budget, policy, notifier=shared.notifier)
    repository = DirectoryRepository(database)
    coalesced = CoalescedExports(exports, repository, sync)
    # An operator's miss goes the way a queued one does: a GetCourse without an email filter
    # is still asked (a window export), not refused.
    directory = DirectoryMirror(repository, tech, coalesced, settings.getcourse_not_found_ttl)
    return GetCourse(
        budget=budget,
        import_budget=import_budget,
        exports=exports,
        importer=GetCourseImportClient(http, key, import_budget, shared.calls),
        directory=directory,
        sync=sync,
        coalesced=coalesced,
    )


def sync_scheduler(settings: Settings, sync: DirectorySync) -> SyncScheduler:
    return SyncScheduler(
        sync,
        full_every=settings.getcourse_full_sync_hours * 3600,
        incremental_every=settings.getcourse_incremental_sync_minutes * 60,
    )

"""The linking context: the bridge (what a link change sets off in GetCourse and Salebot), the
link service with its ownership proof and lookup gate, the queue of lookups waiting for an
export, and the GetCourse events endpoint."""

from __future__ import annotations

from collections.abc import Callable

import handlers
from bot.factories.salebot import retry_policy
from bot.settings import Settings
from services.bridge import BridgeSettings, BridgeWorker, GetCourseEvents, LinkFollowUps
from services.coalescing import CoalescedExports
from services.directory import DirectoryMirror
from services.directory_sync import DirectorySync
from services.export_budget import ExportBudget
from services.getcourse import GetCourseClient
from services.getcourse_import import GetCourseImportClient
from services.linking import ConflictPolicy, LinkService
from services.lookup_gate import LookupGate, LookupLimits
from services.lookup_queue import LookupPace, LookupQueue
from services.mail import LetterSender, SmtpConfig
from services.notifications import Notifier
from services.outbox import OutboxWorker
from services.ownership import OwnershipProofs, ProofMethod
from services.salebot import SalebotClient
from services.storage.database import Database
from services.storage.directory import DirectoryRepository
from services.storage.queued_lookups import QueuedLookupRepository


def bridge_settings(settings: Settings) -> BridgeSettings:
    return BridgeSettings(
        telegram_id_field=settings.getcourse_field_telegram_id,
        salebot_id_field=settings.getcourse_field_salebot_id,
        event_message=settings.salebot_event_message,
        linked_message=settings.salebot_linked_message,
        events_keep_days=settings.getcourse_events_keep_days,
    )


def bridge_worker(
    settings: Settings,
    database: Database,
    salebot: SalebotClient,
    importer: GetCourseImportClient,
    notifier: Notifier,
) -> BridgeWorker:
    """Delivers GetCourse field writes and Salebot callbacks (a lane of the outbox)."""
    retry = retry_policy(settings)
    config = bridge_settings(settings)
    return BridgeWorker(database, salebot, importer, config, retry=retry, notifier=notifier)


def getcourse_events(
    settings: Settings, database: Database, outbox: OutboxWorker
) -> GetCourseEvents:
    secret = settings.getcourse_events_secret
    return GetCourseEvents(
        database,
        secret.get_secret_value() if secret else None,
        bridge_settings(settings),
        on_stored=outbox.wake,
        per_minute=settings.getcourse_events_per_minute,
    )


def link_service(
    settings: Settings,
    database: Database,
    directory: DirectoryMirror,
    outbox: OutboxWorker,
    notifier: Notifier,
    follow_ups: LinkFollowUps,
    letters: LetterSender | None,
    on_queued: Callable[[], None],
) -> LinkService:
    limits = LookupLimits(
        per_person_per_hour=settings.link_attempts_per_hour,
        everyone_per_hour=settings.getcourse_lookups_per_hour,
    )
    return LinkService(
        database,
        directory,
        on_enqueued=outbox.wake,
        on_queued=on_queued,
        gate=LookupGate(database, limits),
        conflict_policy=ConflictPolicy(settings.link_conflict),
        notifier=notifier,
        follow_ups=follow_ups,
        proofs=ownership_proofs(settings, database, letters),
    )


def ownership_proofs(
    settings: Settings, database: Database, letters: LetterSender | None
) -> OwnershipProofs | None:
    if not settings.proof_methods:
        return None
    methods = tuple(ProofMethod(method) for method in settings.proof_methods)
    letter = handlers.code_letter(settings.bot_language, settings.school_name)
    return OwnershipProofs(database, methods, letters, letter)


def smtp_sender(settings: Settings) -> LetterSender | None:
    """One-time codes by SMTP, when SMTP_HOST is set."""
    if settings.smtp_host is None or settings.smtp_from is None:
        return None
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    config = SmtpConfig(
        settings.smtp_host,
        settings.smtp_port_or_default,
        settings.smtp_security,
        settings.smtp_from,
        settings.smtp_username,
        password,
    )
    return LetterSender(config)


def lookup_queue(
    settings: Settings,
    database: Database,
    exports: GetCourseClient,
    directory: DirectoryMirror,
    sync: DirectorySync,
    budget: ExportBudget,
    links: LinkService,
) -> LookupQueue:
    pace = None
    if settings.getcourse_pace_lookups:
        share = settings.getcourse_pace_free_share
        pace = LookupPace(settings.getcourse_export_budget, free_share=share)
    coalesced = CoalescedExports(exports, DirectoryRepository(database), sync)
    lookups = LookupQueue(
        QueuedLookupRepository(database),
        directory,
        coalesced,
        exports,
        links,
        gather_seconds=settings.getcourse_coalesce_seconds,
        patience_seconds=settings.getcourse_queue_patience_minutes * 60,
        retry_after=settings.getcourse_poll_max_interval,
        pace=pace,
        budget=budget,
    )
    # A sync tells the queue of every user it brings, and lets waiting lookups go first.
    sync.serve_lookups(lookups.users_arrived, lookups.settled)
    return lookups


def link_follow_ups(settings: Settings) -> LinkFollowUps:
    """What a link change sets off: field writes, callbacks, events."""
    return LinkFollowUps(bridge_settings(settings))

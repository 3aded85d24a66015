"""The linking context: the bridge (what a link change sets off in GetCourse and Salebot), the
link service with its ownership proof and lookup gate, the queue of lookups waiting for an
export, and the GetCourse events endpoint."""

from __future__ import annotations

from collections.abc import Callable

import handlers
from bot.factories.getcourse import GetCourse
from bot.factories.salebot import retry_policy
from bot.factories.shared import Shared
from bot.settings import Settings
from services.linking.bridge import BridgeSettings, BridgeWorker, GetCourseEvents, LinkFollowUps
from services.linking.code_mail import LetterSender, SmtpConfig
from services.linking.flow import ConflictPolicy, LinkService
from services.linking.lookup_gate import LookupGate, LookupLimits
from services.linking.lookup_queue import LookupPace, LookupQueue
from services.linking.ownership import OwnershipProofs, ProofMethod
from services.models import GetCourseUser
from services.salebot.client import SalebotClient
from services.salebot.outbox import OutboxWorker
from services.storage.queued_lookups import QueuedLookupRepository


def bridge_settings(settings: Settings) -> BridgeSettings:
    return BridgeSettings(
        telegram_id_field=settings.getcourse_field_telegram_id,
        salebot_id_field=settings.getcourse_field_salebot_id,
        event_message=settings.salebot_event_message,
        linked_message=settings.salebot_linked_message,
        events_keep_days=settings.getcourse_events_keep_days,
    )


def link_follow_ups(settings: Settings) -> LinkFollowUps:
    """What a link change sets off: field writes, callbacks, events."""
    return LinkFollowUps(bridge_settings(settings))


def bridge_worker(shared: Shared, salebot: SalebotClient, getcourse: GetCourse) -> BridgeWorker:
    """Delivers GetCourse field writes and Salebot callbacks (a lane of the outbox)."""
    return BridgeWorker(
        shared.database,
        salebot,
        getcourse.importer,
        bridge_settings(shared.settings),
        retry=retry_policy(shared.settings),
        notifier=shared.notifier,
    )


def getcourse_events(
    shared: Shared, outbox: OutboxWorker, getcourse: GetCourse, lookups: LookupQueue
) -> GetCourseEvents:
    settings = shared.settings
    secret = settings.getcourse_events_secret

    async def users_announced(users: list[GetCourseUser]) -> None:
        """A user an event taught the directory: no "not found a moment ago" hides them, and
        whoever waits for their email is answered now, as when a sync brings them."""
        getcourse.directory.announced(users)
        await lookups.users_arrived(users)

    return GetCourseEvents(
        shared.database,
        secret.get_secret_value() if secret else None,
        bridge_settings(settings),
        on_stored=outbox.wake,
        users_announced=users_announced,
        per_minute=settings.getcourse_events_per_minute,
    )


def link_service(
    shared: Shared,
    getcourse: GetCourse,
    outbox: OutboxWorker,
    follow_ups: LinkFollowUps,
    letters: LetterSender | None,
    on_queued: Callable[[], None],
) -> LinkService:
    settings, database = shared.settings, shared.database
    limits = LookupLimits(
        per_person_per_hour=settings.link_attempts_per_hour,
        everyone_per_hour=settings.getcourse_lookups_per_hour,
    )
    return LinkService(
        database,
        getcourse.directory,
        on_enqueued=outbox.wake,
        on_queued=on_queued,
        gate=LookupGate(database, limits),
        conflict_policy=ConflictPolicy(settings.link_conflict),
        notifier=shared.notifier,
        follow_ups=follow_ups,
        proofs=ownership_proofs(shared, letters),
    )


def ownership_proofs(shared: Shared, letters: LetterSender | None) -> OwnershipProofs | None:
    settings = shared.settings
    if not settings.proof_methods:
        return None
    methods = tuple(ProofMethod(method) for method in settings.proof_methods)
    letter = handlers.code_letter(settings.bot_language, settings.school_name)
    return OwnershipProofs(shared.database, methods, letters, letter)


def smtp_sender(settings: Settings) -> LetterSender | None:
    """One-time codes by SMTP, when SMTP_HOST is set."""
    if settings.smtp_host is None or settings.smtp_from is None:
        return None
    secret = settings.smtp_password
    return LetterSender(
        SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port_or_default,
            security=settings.smtp_security,
            sender=settings.smtp_from,
            username=settings.smtp_username,
            password=secret.get_secret_value() if secret else None,
        )
    )


def lookup_queue(shared: Shared, getcourse: GetCourse, links: LinkService) -> LookupQueue:
    settings, database, sync = shared.settings, shared.database, getcourse.sync
    pace = None
    if settings.getcourse_pace_lookups:
        share = settings.getcourse_pace_free_share
        pace = LookupPace(settings.getcourse_export_budget, free_share=share)
    lookups = LookupQueue(
        QueuedLookupRepository(database),
        getcourse.directory,
        getcourse.coalesced,
        getcourse.exports,
        links,
        gather_seconds=settings.getcourse_coalesce_seconds,
        patience_seconds=settings.getcourse_queue_patience_minutes * 60,
        retry_after=settings.getcourse_poll_max_interval,
        pace=pace,
        budget=getcourse.budget,
    )
    # A sync tells the queue of every user it brings, and lets waiting lookups go first.
    sync.serve_lookups(lookups.users_arrived, lookups.settled)
    return lookups

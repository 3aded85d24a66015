"""Composition root: builds the services, the Bot and the Dispatcher from settings, and
owns their lifetime (one HTTP client per external system, one database connection)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import typing
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BotCommand, BotCommandScopeChat, BotCommandScopeChatMember
from pydantic import SecretStr

from bot import __version__, middlewares
from bot.draining import finish_tasks
from bot.fsm_storage import SQLiteStorage
from bot.isolation import PerChatIsolation
from bot.metrics import Metrics
from bot.settings import Settings
from bot.telegram_retry import RetryAfterMiddleware
from handlers import get_routers
from handlers.lookup_answers import deliver_answer
from handlers.notices import render_notices
from handlers.operators import OPERATOR_COMMANDS, install_console
from handlers.texts import Texts
from services.backoff import RetryPolicy
from services.bridge import BridgeSettings, BridgeWorker, GetCourseEvents, LinkFollowUps
from services.coalescing import CoalescedExports
from services.console import (
    ConsoleReports,
    Deployment,
    LinksExport,
    OperatorChanges,
    OperatorConsole,
    PersonFinder,
)
from services.directory import DirectoryMirror
from services.directory_sync import DirectorySync, SyncPolicy, SyncScheduler
from services.erasure import ErasureService
from services.export_budget import ExportBudget, ImportBudget
from services.figures import FigureBook
from services.getcourse import GetCourseClient, PollSchedule
from services.getcourse_import import GetCourseImportClient
from services.getcourse_tech import GetCourseTechClient
from services.health import CallTracker
from services.link_store import LinkStore
from services.linking import ConflictPolicy, LinkService
from services.lookup_gate import LookupGate, LookupLimits
from services.lookup_queue import LookupPace, LookupQueue
from services.mail import LetterSender, SmtpConfig
from services.notifications import GroupingNotifier, NoticeGroup
from services.outbox import DeliverySchedule, OutboxWorker
from services.ownership import CODE_VALID_SECONDS, LetterRenderer, OwnershipProofs, ProofMethod
from services.profiles import ProfileBook
from services.reachability import Reachability
from services.retention import RetentionCleanup
from services.salebot import SalebotClient
from services.storage.database import Database
from services.storage.dialog_state import DialogStateRepository
from services.storage.directory import DirectoryRepository
from services.storage.getcourse_quirks import QuirkRepository
from services.storage.instance_lock import InstanceLock
from services.storage.operator_menus import OperatorMenu, OperatorMenuRepository
from services.storage.queued_lookups import QueuedLookupRepository
from services.supervision import Supervisor

log = logging.getLogger(__name__)

USER_AGENT = f"gc-salebot-link-bot/{__version__}"
STUDENT_COMMANDS = ("start", "email", "cancel", "forget")
# The first notice after a quiet spell waits this long for the rest of its burst.
NOTICE_GATHER_SECONDS = 2.0


@dataclass
class Services:
    database: Database
    getcourse_http: httpx.AsyncClient
    salebot_http: httpx.AsyncClient
    budget: ExportBudget
    getcourse: GetCourseClient
    directory: DirectoryMirror  # every lookup: the local copy, then the Tech API or an export
    sync: DirectorySync
    salebot: SalebotClient
    outbox: OutboxWorker
    links: LinkService
    lookups: LookupQueue  # lookups waiting for an export, answered later
    reachability: Reachability
    calls: CallTracker  # how GetCourse and Salebot answered lately
    notifier: GroupingNotifier  # operator notices; App.running delivers them to the chat
    profiles: ProfileBook
    operators: OperatorConsole
    import_budget: ImportBudget  # the import API's own ledger (GetCourse field writes)
    figures: FigureBook  # what /stats, /health and /metrics count
    follow_ups: LinkFollowUps  # what a link change sets off: field writes, callbacks, events
    bridge: BridgeWorker  # delivers GetCourse field writes and Salebot callbacks
    events: GetCourseEvents  # /getcourse/events
    erasure: ErasureService  # /forget and /erase
    supervisor: Supervisor  # keeps the background loops running; readiness reads it
    letters: LetterSender | None = None  # one-time codes by SMTP, when SMTP_HOST is set

    async def close(self) -> None:
        if self.letters is not None:
            await self.letters.close()
        await self.getcourse_http.aclose()
        await self.salebot_http.aclose()
        await self.database.close()


async def create_services(settings: Settings) -> Services:
    database = await Database.open(settings.database_path)
    getcourse_http = httpx.AsyncClient(
        base_url=settings.getcourse_url,
        follow_redirects=False,  # a redirect would carry the key elsewhere and drop POST bodies
        timeout=httpx.Timeout(30.0, connect=10.0),
        headers={"User-Agent": USER_AGENT},
    )
    salebot_http = httpx.AsyncClient(
        base_url=settings.salebot_base_url,
        timeout=httpx.Timeout(10.0),
        headers={"User-Agent": USER_AGENT},
    )
    budget = ExportBudget(database, settings.getcourse_export_budget)
    calls = CallTracker()
    supervisor = Supervisor()
    notifier = GroupingNotifier(
        interval=settings.operator_notice_interval,
        gather=min(NOTICE_GATHER_SECONDS, settings.operator_notice_interval),
    )
    getcourse = GetCourseClient(
        getcourse_http,
        settings.getcourse_api_key.get_secret_value(),
        budget,
        PollSchedule(
            first_delay=settings.getcourse_poll_first_delay,
            max_interval=settings.getcourse_poll_max_interval,
            give_up_after=settings.getcourse_lookup_timeout,
        ),
        calls=calls,
        notifier=notifier,
        quirks=QuirkRepository(database),
    )
    repository = DirectoryRepository(database)
    tech = None
    if settings.getcourse_tech_api_key is not None:
        tech = GetCourseTechClient(
            getcourse_http,
            settings.getcourse_tech_api_key.get_secret_value(),
            notifier=notifier,
            calls=calls,
        )
    sync = DirectorySync(
        database,
        getcourse,
        budget,
        SyncPolicy(
            window_days=settings.getcourse_sync_window_days,
            since=settings.getcourse_sync_since,
            reserve=settings.getcourse_sync_reserve,
            window_users=settings.getcourse_sync_window_users,
        ),
        notifier=notifier,
    )
    coalesced = CoalescedExports(getcourse, repository, sync)
    # An operator's miss goes the way a queued one does: a GetCourse without an email filter
    # is still asked (a window export), not refused.
    directory = DirectoryMirror(repository, tech, coalesced, settings.getcourse_not_found_ttl)
    salebot = SalebotClient(
        salebot_http,
        settings.salebot_api_key.get_secret_value(),
        settings.salebot_bot_username,
        calls=calls,
    )
    first_delay = settings.salebot_retry_first_delay
    bridge_settings = BridgeSettings(
        telegram_id_field=settings.getcourse_field_telegram_id,
        salebot_id_field=settings.getcourse_field_salebot_id,
        event_message=settings.salebot_event_message,
        linked_message=settings.salebot_linked_message,
        events_keep_days=settings.getcourse_events_keep_days,
    )
    import_budget = ImportBudget(database, settings.getcourse_import_budget)
    bridge = BridgeWorker(
        database,
        salebot,
        GetCourseImportClient(
            getcourse_http, settings.getcourse_api_key.get_secret_value(), import_budget, calls
        ),
        bridge_settings,
        retry=RetryPolicy(first_delay, settings.salebot_retry_max_delay),
        notifier=notifier,
    )
    outbox = OutboxWorker(
        database,
        salebot,
        DeliverySchedule(
            retry=RetryPolicy(first_delay, settings.salebot_retry_max_delay),
            missing_client=RetryPolicy(first_delay, settings.salebot_missing_client_max_delay),
            missing_client_for=settings.salebot_missing_client_days * 24 * 3600,
        ),
        notifier=notifier,
        lanes=[bridge],
    )
    follow_ups = LinkFollowUps(bridge_settings)
    secret = settings.getcourse_events_secret
    events = GetCourseEvents(
        database,
        secret.get_secret_value() if secret else None,
        bridge_settings,
        on_stored=outbox.wake,
        per_minute=settings.getcourse_events_per_minute,
    )
    letters = smtp_sender(settings)
    proofs = None
    if settings.proof_methods:
        proofs = OwnershipProofs(
            database,
            tuple(ProofMethod(method) for method in settings.proof_methods),
            letters,
            letter_renderer(settings, Texts.load(settings.bot_language)),
        )
    links = LinkService(
        database,
        directory,
        on_enqueued=outbox.wake,
        on_queued=lambda: lookups.wake(),
        gate=LookupGate(
            database,
            LookupLimits(
                per_person_per_hour=settings.link_attempts_per_hour,
                everyone_per_hour=settings.getcourse_lookups_per_hour,
            ),
        ),
        conflict_policy=ConflictPolicy(settings.link_conflict),
        notifier=notifier,
        follow_ups=follow_ups,
        proofs=proofs,
    )
    lookups = LookupQueue(
        QueuedLookupRepository(database),
        directory,
        coalesced,
        getcourse,
        links,
        gather_seconds=settings.getcourse_coalesce_seconds,
        patience_seconds=settings.getcourse_queue_patience_minutes * 60,
        retry_after=settings.getcourse_poll_max_interval,
        pace=LookupPace(
            settings.getcourse_export_budget, free_share=settings.getcourse_pace_free_share
        )
        if settings.getcourse_pace_lookups
        else None,
        budget=budget,
    )
    sync.serve_lookups(lookups.users_arrived, lookups.settled)
    figures = FigureBook(database, budget)
    operators = OperatorConsole(
        find=PersonFinder(database),
        change=OperatorChanges(
            database,
            directory,
            LinkStore(follow_ups),
            outbox.wake,
            keep_variables_on_unlink=settings.salebot_keep_variables_on_unlink,
        ),
        report=ConsoleReports(
            database,
            figures,
            budget,
            sync,
            calls,
            Deployment(__version__, settings.mode, settings_summary(settings)),
            supervisor=supervisor,
        ),
        export=LinksExport(database),
    )
    profiles = ProfileBook(database)
    reachability = Reachability(database)
    erasure = ErasureService(
        database,
        on_enqueued=outbox.wake,
        forget_cached=(profiles.forget, reachability.forget),
        follow_ups=follow_ups,
    )
    return Services(
        database=database,
        getcourse_http=getcourse_http,
        salebot_http=salebot_http,
        budget=budget,
        getcourse=getcourse,
        directory=directory,
        sync=sync,
        salebot=salebot,
        outbox=outbox,
        links=links,
        lookups=lookups,
        reachability=reachability,
        calls=calls,
        notifier=notifier,
        profiles=profiles,
        operators=operators,
        import_budget=import_budget,
        figures=figures,
        follow_ups=follow_ups,
        bridge=bridge,
        events=events,
        erasure=erasure,
        supervisor=supervisor,
        letters=letters,
    )


def smtp_sender(settings: Settings) -> LetterSender | None:
    if settings.smtp_host is None or settings.smtp_from is None:
        return None
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return LetterSender(
        SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port_or_default,
            security=settings.smtp_security,
            sender=settings.smtp_from,
            username=settings.smtp_username,
            password=password,
        )
    )


def letter_renderer(settings: Settings, texts: Texts) -> LetterRenderer:
    """The code letter in the bot's language, signed with SCHOOL_NAME."""
    school = settings.school_name or texts.render_plain("school_default")
    minutes = CODE_VALID_SECONDS // 60

    def render(code: str) -> tuple[str, str]:
        values = {"school": school, "code": code, "minutes": minutes}
        subject = texts.render_plain("code_letter_subject", **values)
        return subject, texts.render_plain("code_letter_body", **values)

    return render


def settings_summary(settings: Settings) -> tuple[tuple[str, str], ...]:
    """Every setting except the secrets, as (NAME, value), for an operator's /health."""
    summary = []
    for name, value in settings:
        # By declared type, so an unset secret is left out as well as a set one.
        annotation = Settings.model_fields[name].annotation
        if annotation is SecretStr or SecretStr in typing.get_args(annotation):
            continue
        if isinstance(value, frozenset):
            value = ",".join(str(item) for item in sorted(value))
        elif isinstance(value, tuple):
            value = ",".join(str(item) for item in value) or "off"
        summary.append((name.upper(), "" if value is None else str(value)))
    return tuple(summary)


def create_bot(settings: Settings) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
    session.middleware(RetryAfterMiddleware())
    return Bot(
        settings.bot_token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML),
    )


def create_dispatcher(
    settings: Settings, services: Services, metrics: Metrics | None = None
) -> Dispatcher:
    dispatcher = Dispatcher(
        storage=SQLiteStorage(DialogStateRepository(services.database)),
        # One person's updates are handled one after another, everyone else's in parallel.
        events_isolation=PerChatIsolation(),
        settings=settings,
        texts=Texts.load(settings.bot_language),
        link_service=services.links,
        lookup_queue=services.lookups,
        queued_notice_after=settings.getcourse_queued_notice_seconds,
        operator_ids=settings.operator_ids,
        operator_chat_id=settings.operator_chat_id,
        school_name=settings.school_name,
        privacy_policy_url=settings.privacy_policy_url,
        directory_sync=services.sync,
        profile_book=services.profiles,
        reachability=services.reachability,
        erasure=services.erasure,
    )
    install_console(dispatcher, services.operators)
    middlewares.install(
        dispatcher,
        operator_ids=settings.operator_ids,
        outbox=services.outbox,
        reachability=services.reachability,
        metrics=metrics,
    )
    dispatcher.include_routers(*get_routers())
    return dispatcher


async def send_notices(bot: Bot, chat_id: int, texts: Texts, batch: list[NoticeGroup]) -> None:
    await bot.send_message(chat_id, render_notices(texts, batch))


@dataclass
class App:
    settings: Settings
    services: Services
    bot: Bot
    dispatcher: Dispatcher
    metrics: Metrics
    lock: InstanceLock
    lock_lost: asyncio.Event = field(default_factory=asyncio.Event)
    stop_deadline: float | None = None  # loop time; set once stopping began

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, settings: Settings) -> AsyncIterator[App]:
        """Services up, the database lock held and the background loops (the outbox worker
        delivering, queued lookups, scheduled syncs, operator notices) running under the
        supervisor; everything closed on the way out. Raises ``InstanceLockHeld`` while another
        process runs on the database."""
        services = await create_services(settings)
        lock = InstanceLock(services.database, settings.mode)
        try:
            await lock.acquire()
        except BaseException:
            await services.close()
            raise
        bot = create_bot(settings)
        metrics = Metrics()
        dispatcher = create_dispatcher(settings, services, metrics)
        services.calls.subscribe(metrics.observe_call)
        services.events.subscribe(metrics.observe_event)
        services.bridge.subscribe(metrics.observe_event)
        supervisor = services.supervisor
        # Every background loop runs supervised: a failure is logged and the loop started again.
        background = {supervisor.start("outbox", services.outbox.run)}
        texts = Texts.load(settings.bot_language)
        answers = functools.partial(
            deliver_answer,
            bot,
            dispatcher.storage,
            texts,
            services.reachability,
            methods=services.links.proof_methods,
        )
        lookups = supervisor.start(
            "queued_lookups", functools.partial(services.lookups.run, answers)
        )
        background.add(lookups)
        if settings.operator_chat_id is not None:
            deliver = functools.partial(send_notices, bot, settings.operator_chat_id, texts)
            background.add(
                supervisor.start(
                    "operator_notices", functools.partial(services.notifier.run, deliver)
                )
            )
        scheduler = SyncScheduler(
            services.sync,
            full_every=settings.getcourse_full_sync_hours * 3600,
            incremental_every=settings.getcourse_incremental_sync_minutes * 60,
        )
        background.add(supervisor.start("directory_sync", scheduler.run))
        cleanup = RetentionCleanup(services.database, settings.retention_days)
        background.add(supervisor.start("retention_cleanup", cleanup.run))
        app = cls(settings, services, bot, dispatcher, metrics, lock)
        keeper = supervisor.start("instance_lock", functools.partial(lock.keep, app._on_lock_lost))
        try:
            yield app
        finally:
            supervisor.stop()  # a loop failing from here on stays down
            keeper.cancel()
            lookups.cancel()  # waiting lookups stay queued for the next start
            services.outbox.stop()
            services.notifier.stop()
            scheduler.stop()  # a sync cut off mid-window resumes at its saved export
            cleanup.stop()
            await services.sync.stop()
            # The item in delivery may finish; cut off, it stays queued for the next start.
            await finish_tasks({*background, keeper}, app.begin_stop(), "background tasks")
            await bot.session.close()
            await lock.release()
            await services.close()

    def begin_stop(self) -> float:
        """Note that the app no longer takes updates, and fix the one deadline (loop time)
        that everything stopping shares: SHUTDOWN_TIMEOUT from the first call."""
        if self.stop_deadline is None:
            loop = asyncio.get_running_loop()
            self.stop_deadline = loop.time() + self.settings.shutdown_timeout
        return self.stop_deadline

    def _on_lock_lost(self) -> None:
        # Another process delivers now: stop at once rather than write twice.
        self.services.outbox.stop()
        self.lock_lost.set()

    async def publish_commands(self) -> None:
        """Students see their commands; operators also see theirs, in their private chat with
        the bot and in the operator chat (a scope per operator, so nobody else sees them).
        Menus set for someone no longer an operator (or for an operator chat no longer used)
        are taken back."""
        texts = Texts.load(self.settings.bot_language)

        def commands(names: tuple[str, ...]) -> list[BotCommand]:
            return [
                BotCommand(command=name, description=texts.render(f"command_{name}"))
                for name in names
            ]

        await self.bot.set_my_commands(commands(STUDENT_COMMANDS))
        chat_id = self.settings.operator_chat_id
        wanted: set[OperatorMenu] = set()
        for operator_id in sorted(self.settings.operator_ids):
            wanted.add((operator_id, operator_id))
            if chat_id is not None:
                wanted.add((operator_id, chat_id))
        for menu in sorted(wanted):
            private = menu[0] == menu[1]
            # The student dialog works in private chats only.
            names = STUDENT_COMMANDS + OPERATOR_COMMANDS if private else OPERATOR_COMMANDS
            try:
                await self.bot.set_my_commands(commands(names), scope=_menu_scope(menu))
            except TelegramAPIError as error:
                # Telegram knows no chat with someone who never wrote to the bot.
                log.warning("operator %s: command menu not set: %s", menu[0], error)
        menus = OperatorMenuRepository(self.services.database)
        kept = set(wanted)
        for menu in sorted(await menus.all() - wanted):
            try:
                await self.bot.delete_my_commands(scope=_menu_scope(menu))
                log.info("telegram %s: operator command menu taken back", menu[0])
            except TelegramAPIError as error:
                log.warning("telegram %s: operator command menu not taken back: %s", menu[0], error)
                kept.add(menu)  # tried again at the next start
        await menus.replace(kept)

    async def run_polling(self, *, handle_signals: bool = True) -> None:
        """Long polling until SIGINT/SIGTERM; the webhook is removed first (Telegram refuses
        getUpdates while one is set)."""
        await self.bot.delete_webhook(drop_pending_updates=False)
        await self.publish_commands()
        me = await self.bot.get_me()
        log.info("polling as @%s (id %s)", me.username, me.id)
        await self.dispatcher.start_polling(
            self.bot,
            allowed_updates=self.dispatcher.resolve_used_update_types(),
            handle_signals=handle_signals,
            close_bot_session=False,
            # Updates beyond this wait in Telegram: the next poll comes once a slot is free.
            tasks_concurrency_limit=self.settings.updates_at_once,
        )


def _menu_scope(menu: OperatorMenu) -> BotCommandScopeChat | BotCommandScopeChatMember:
    telegram_id, chat_id = menu
    if chat_id == telegram_id:
        return BotCommandScopeChat(chat_id=chat_id)
    return BotCommandScopeChatMember(chat_id=chat_id, user_id=telegram_id)

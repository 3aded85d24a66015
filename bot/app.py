"""Composition root: builds the services (each context by its factory in ``bot.factories``),
the Bot and the Dispatcher from settings, and owns their lifetime (one HTTP client per external
system, one database connection)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode

import handlers
from bot import middlewares
from bot.command_menus import publish_commands
from bot.draining import finish_tasks
from bot.factories import console, linking, privacy, salebot
from bot.factories.getcourse import build_getcourse, sync_scheduler
from bot.factories.shared import open_shared
from bot.fsm_storage import SQLiteStorage
from bot.isolation import PerChatIsolation
from bot.metrics import Metrics
from bot.settings import Settings
from bot.telegram_retry import RetryAfterMiddleware
from services.console import OperatorConsole
from services.console.figures import FigureBook
from services.console.profiles import ProfileBook
from services.getcourse.budget import ExportBudget, ImportBudget
from services.getcourse.directory import DirectoryMirror
from services.getcourse.directory_sync import DirectorySync
from services.getcourse.exports import GetCourseClient
from services.health import CallTracker
from services.linking.bridge import BridgeWorker, GetCourseEvents, LinkFollowUps
from services.linking.code_mail import LetterSender
from services.linking.flow import LinkService
from services.linking.lookup_queue import LookupQueue
from services.notifications import GroupingNotifier
from services.privacy.erasure import ErasureService
from services.reachability import Reachability
from services.salebot.client import SalebotClient
from services.salebot.outbox import OutboxWorker
from services.storage.database import Database
from services.storage.dialog_state import DialogStateRepository
from services.storage.instance_lock import InstanceLock
from services.supervision import Supervisor

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Every service of the running app, by context (see ``bot.factories``)."""

    # shared resources and the runtime
    database: Database
    getcourse_http: httpx.AsyncClient
    salebot_http: httpx.AsyncClient
    calls: CallTracker  # how GetCourse and Salebot answered lately
    supervisor: Supervisor  # keeps the background loops running; readiness reads it
    notifier: GroupingNotifier  # operator notices; App.running delivers them to the chat
    # GetCourse
    budget: ExportBudget
    import_budget: ImportBudget  # the import API's own ledger (GetCourse field writes)
    getcourse: GetCourseClient
    directory: DirectoryMirror  # every lookup: the local copy, then the Tech API or an export
    sync: DirectorySync
    # Salebot
    salebot: SalebotClient
    outbox: OutboxWorker
    # linking
    bridge: BridgeWorker  # delivers GetCourse field writes and Salebot callbacks
    links: LinkService
    lookups: LookupQueue  # lookups waiting for an export, answered later
    follow_ups: LinkFollowUps  # what a link change sets off: field writes, callbacks, events
    events: GetCourseEvents  # /getcourse/events
    letters: LetterSender | None  # one-time codes by SMTP, when SMTP_HOST is set
    profiles: ProfileBook
    reachability: Reachability
    # console and privacy
    operators: OperatorConsole
    figures: FigureBook  # what /stats, /health and /metrics count
    erasure: ErasureService  # /forget and /erase

    async def close(self) -> None:
        if self.letters is not None:
            await self.letters.close()
        await self.getcourse_http.aclose()
        await self.salebot_http.aclose()
        await self.database.close()


async def create_services(settings: Settings) -> Services:
    shared = await open_shared(settings)
    supervisor = Supervisor()
    getcourse = build_getcourse(shared)
    salebot_api = salebot.salebot_client(shared)
    bridge = linking.bridge_worker(shared, salebot_api, getcourse)
    outbox = salebot.outbox_worker(shared, salebot_api, lanes=[bridge])
    follow_ups = linking.link_follow_ups(settings)
    letters = linking.smtp_sender(settings)
    # The lookup queue is built next, around the link service: it wakes the queue when asked.
    links = linking.link_service(
        shared, getcourse, outbox, follow_ups, letters, on_queued=lambda: lookups.wake()
    )
    lookups = linking.lookup_queue(shared, getcourse, links)
    profiles, reachability = ProfileBook(shared.database), Reachability(shared.database)
    figures = FigureBook(shared.database, getcourse.budget)
    return Services(
        database=shared.database,
        supervisor=supervisor,
        getcourse_http=shared.getcourse_http,
        salebot_http=shared.salebot_http,
        calls=shared.calls,
        notifier=shared.notifier,
        figures=figures,
        budget=getcourse.budget,
        import_budget=getcourse.import_budget,
        getcourse=getcourse.exports,
        directory=getcourse.directory,
        sync=getcourse.sync,
        events=linking.getcourse_events(shared, outbox, getcourse, lookups),
        salebot=salebot_api,
        outbox=outbox,
        bridge=bridge,
        links=links,
        lookups=lookups,
        follow_ups=follow_ups,
        letters=letters,
        profiles=profiles,
        reachability=reachability,
        operators=console.operator_console(
            shared, getcourse, outbox, follow_ups, supervisor, figures
        ),
        erasure=privacy.erasure_service(shared, outbox, follow_ups, profiles, reachability),
    )


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
    """The services and settings the handlers take go in as workflow data (aiogram injects
    them by name); then the middlewares, and the handlers install themselves."""
    dispatcher = Dispatcher(
        storage=SQLiteStorage(DialogStateRepository(services.database)),
        # One person's updates are handled one after another, everyone else's in parallel.
        events_isolation=PerChatIsolation(),
        settings=settings,
        queued_notice_after=settings.getcourse_queued_notice_seconds,
        operator_ids=settings.operator_ids,
        operator_chat_id=settings.operator_chat_id,
        school_name=settings.school_name,
        privacy_policy_url=settings.privacy_policy_url,
    )
    dispatcher.workflow_data.update(
        link_service=services.links,
        lookup_queue=services.lookups,
        person_finder=services.operators.find,
        operator_changes=services.operators.change,
        console_reports=services.operators.report,
        links_export=services.operators.export,
        directory_sync=services.sync,
        profile_book=services.profiles,
        reachability=services.reachability,
        erasure=services.erasure,
    )
    middlewares.install(
        dispatcher,
        language=settings.bot_language,
        operator_ids=settings.operator_ids,
        outbox=services.outbox,
        reachability=services.reachability,
        metrics=metrics,
    )
    handlers.install(dispatcher, settings.bot_language)
    return dispatcher


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
        answers = handlers.lookup_answers(
            bot, dispatcher, services.reachability, services.links.proof_methods
        )
        lookups = supervisor.start(
            "queued_lookups", functools.partial(services.lookups.run, answers)
        )
        background.add(lookups)
        if settings.operator_chat_id is not None:
            deliver = handlers.operator_notices(bot, dispatcher, settings.operator_chat_id)
            background.add(
                supervisor.start(
                    "operator_notices", functools.partial(services.notifier.run, deliver)
                )
            )
        scheduler = sync_scheduler(settings, services.sync)
        background.add(supervisor.start("directory_sync", scheduler.run))
        cleanup = privacy.retention_cleanup(settings, services.database)
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
        await publish_commands(self.bot, self.dispatcher, self.settings, self.services.database)

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

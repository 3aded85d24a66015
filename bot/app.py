"""Composition root: builds the services, the Bot and the Dispatcher from settings, and
owns their lifetime (one HTTP client per external system, one database connection)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.types import BotCommand

from bot import __version__
from bot.fsm_storage import SQLiteStorage
from bot.settings import Settings
from handlers import get_routers
from handlers.texts import Texts
from services.export_budget import ExportBudget
from services.getcourse import GetCourseClient, PollSchedule
from services.linking import LinkService
from services.outbox import DeliverySchedule, OutboxWorker, RetryPolicy
from services.salebot import SalebotClient
from services.storage.database import Database
from services.storage.dialog_state import DialogStateRepository

log = logging.getLogger(__name__)

USER_AGENT = f"gc-salebot-link-bot/{__version__}"


@dataclass
class Services:
    database: Database
    getcourse_http: httpx.AsyncClient
    salebot_http: httpx.AsyncClient
    budget: ExportBudget
    getcourse: GetCourseClient
    salebot: SalebotClient
    outbox: OutboxWorker
    links: LinkService

    async def close(self) -> None:
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
    getcourse = GetCourseClient(
        getcourse_http,
        settings.getcourse_api_key.get_secret_value(),
        budget,
        PollSchedule(
            first_delay=settings.getcourse_poll_first_delay,
            max_interval=settings.getcourse_poll_max_interval,
            give_up_after=settings.getcourse_lookup_timeout,
        ),
    )
    salebot = SalebotClient(
        salebot_http, settings.salebot_api_key.get_secret_value(), settings.salebot_bot_username
    )
    first_delay = settings.salebot_retry_first_delay
    outbox = OutboxWorker(
        database,
        salebot,
        DeliverySchedule(
            retry=RetryPolicy(first_delay, settings.salebot_retry_max_delay),
            missing_client=RetryPolicy(first_delay, settings.salebot_missing_client_max_delay),
            missing_client_for=settings.salebot_missing_client_days * 24 * 3600,
        ),
    )
    links = LinkService(database, getcourse, on_enqueued=outbox.wake)
    return Services(
        database, getcourse_http, salebot_http, budget, getcourse, salebot, outbox, links
    )


def create_bot(settings: Settings) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
    return Bot(
        settings.bot_token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML),
    )


def create_dispatcher(settings: Settings, database: Database, links: LinkService) -> Dispatcher:
    dispatcher = Dispatcher(
        storage=SQLiteStorage(DialogStateRepository(database)),
        # One person's updates are handled one after another, everyone else's in parallel.
        events_isolation=SimpleEventIsolation(),
        settings=settings,
        texts=Texts.load(settings.language),
        link_service=links,
    )
    dispatcher.include_routers(*get_routers())
    return dispatcher


@dataclass
class App:
    settings: Settings
    services: Services
    bot: Bot
    dispatcher: Dispatcher

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, settings: Settings) -> AsyncIterator[App]:
        """Services up and the outbox worker delivering; everything closed on the way out."""
        services = await create_services(settings)
        bot = create_bot(settings)
        dispatcher = create_dispatcher(settings, services.database, services.links)
        app = cls(settings, services, bot, dispatcher)
        worker = asyncio.create_task(services.outbox.run(), name="outbox")
        try:
            yield app
        finally:
            services.outbox.stop()
            await worker
            await bot.session.close()
            await services.close()

    async def publish_commands(self) -> None:
        texts = Texts.load(self.settings.language)
        await self.bot.set_my_commands(
            [
                BotCommand(command=name, description=texts.render(f"command_{name}"))
                for name in ("start", "email", "cancel")
            ]
        )

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
        )

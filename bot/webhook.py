"""Webhook mode: aiogram's aiohttp request handler on ``WEBHOOK_LISTEN``, at the path of
``WEBHOOK_URL``, next to the health routes.

Telegram gets its 200 as soon as an update is read and the update is handled in the background
(a link can wait minutes for GetCourse; Telegram would resend after 60 s), so updates arriving
while the bot is busy are taken at once. On shutdown the server stops listening first, then
waits for those background handlers."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit

from aiogram import Bot
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

from bot.app import App
from bot.draining import finish_tasks
from bot.health import add_health_routes
from bot.settings import split_host_port

log = logging.getLogger(__name__)


class DrainingRequestHandler(SimpleRequestHandler):
    """aiogram's handler, except that closing waits for the updates still being handled (until
    the app's stop deadline) and leaves the bot session to the app, which closes it last."""

    def __init__(self, app: App, *, secret_token: str) -> None:
        super().__init__(app.dispatcher, app.bot, secret_token=secret_token)
        self._app = app
        # Telegram has its 200 already; updates beyond this wait here for their turn.
        self._slots = asyncio.Semaphore(app.settings.updates_at_once)

    async def _background_feed_update(self, bot: Bot, update: dict[str, Any]) -> None:
        async with self._slots:
            await super()._background_feed_update(bot, update)

    async def drain(self) -> None:
        tasks = self._background_feed_update_tasks
        await finish_tasks(tasks, self._app.begin_stop(), "update handlers")

    async def close(self) -> None:
        await self.drain()


class WebhookRunner:
    def __init__(self, app: App) -> None:
        self._app = app
        settings = app.settings
        assert settings.webhook_url is not None  # MODE=webhook requires both
        assert settings.webhook_secret is not None
        self._url = settings.webhook_url
        self._secret = settings.webhook_secret.get_secret_value()
        self._handler = DrainingRequestHandler(app, secret_token=self._secret)
        web_app = web.Application()
        # Registered before setup_application, so on shutdown the handlers are drained before
        # the dispatcher's shutdown hooks run.
        self._handler.register(web_app, path=urlsplit(self._url).path or "/")
        setup_application(web_app, app.dispatcher, bot=app.bot)
        add_health_routes(web_app, app)
        self._runner = web.AppRunner(web_app, access_log=None)

    async def start(self) -> None:
        """Listen first, then tell Telegram where to post."""
        app = self._app
        host, port = split_host_port(app.settings.webhook_listen)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        await app.publish_commands()
        allowed = app.dispatcher.resolve_used_update_types()
        await app.bot.set_webhook(
            self._url,
            secret_token=self._secret,
            allowed_updates=allowed,
            drop_pending_updates=app.settings.webhook_drop_pending_updates,
        )
        me = await app.bot.get_me()
        log.info(
            "webhook for @%s on %s, listening on %s (updates: %s)",
            me.username,
            self._url,
            app.settings.webhook_listen,
            ", ".join(allowed),
        )

    async def wait(self) -> None:
        """Never returns: once listening, the server runs until stopped."""
        await asyncio.get_running_loop().create_future()

    async def stop(self) -> None:
        """Stop listening and answering, then let the handlers finish within SHUTDOWN_TIMEOUT.

        The webhook stays set: Telegram keeps the updates that arrive meanwhile and delivers
        them to the next start."""
        self._app.begin_stop()
        if self._runner.server is None:
            return  # stopped before it listened
        # Sites close, the open connections finish their request, on_shutdown drains.
        await self._runner.cleanup()
        # An update whose request was still being read when the drain began.
        await self._handler.drain()
        log.info("webhook server stopped")

"""Long-polling mode: aiogram's polling, the health server on ``HEALTH_LISTEN``, and the public
server on ``HTTP_LISTEN`` while ``/getcourse/events`` is on."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot.app import App
from bot.draining import finish_tasks
from bot.health import HealthServer
from bot.public_http import PublicServer

log = logging.getLogger(__name__)


class PollingRunner:
    def __init__(self, app: App) -> None:
        self._app = app
        self._health = HealthServer(app, app.settings.health_listen)
        self._public = PublicServer(app) if app.services.events.enabled else None
        self._polling: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._health.start()
        if self._public is not None:
            await self._public.start()
        # Signals are ours (see bot.serve): aiogram's handler would stop polling only.
        self._polling = asyncio.create_task(
            self._app.run_polling(handle_signals=False), name="polling"
        )

    async def wait(self) -> None:
        """Returns (or raises) only if polling ends on its own, such as a rejected token."""
        assert self._polling is not None
        # Shielded: whoever waits may be cancelled; polling stops only through ``stop``.
        await asyncio.shield(self._polling)

    async def stop(self) -> None:
        """No more getUpdates; the updates already taken are handled within SHUTDOWN_TIMEOUT."""
        app = self._app
        deadline = app.begin_stop()
        if self._polling is not None and not self._polling.done():
            try:
                await app.dispatcher.stop_polling()
            except RuntimeError:  # still deleting the webhook or publishing commands
                self._polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._polling
        # aiogram runs each update as a task of its own and does not wait for them on stop.
        await finish_tasks(app.dispatcher._handle_update_tasks, deadline, "update handlers")
        if self._public is not None:
            await self._public.stop()
        await self._health.stop()
        log.info("polling stopped")

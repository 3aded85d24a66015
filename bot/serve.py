"""``python -m bot``: run in MODE until SIGTERM or SIGINT, then stop gracefully.

Graceful means: stop taking updates, let the handlers in flight and the outbox's current step
finish within SHUTDOWN_TIMEOUT, close the clients and the database, exit 0."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Protocol

from aiogram.exceptions import TelegramAPIError

from bot.app import App
from bot.polling import PollingRunner
from bot.settings import Settings
from bot.webhook import WebhookRunner
from services.errors import StartupError

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Runner(Protocol):
    async def start(self) -> None: ...

    async def wait(self) -> None:
        """Returns or raises only when the mode ends on its own (a failure)."""

    async def stop(self) -> None:
        """Stop taking updates and finish the ones taken; safe after a partial start."""


async def serve(settings: Settings) -> int:
    """0 after a clean stop on a signal; 1 when the bot could not run or had to stop."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(received: signal.Signals) -> None:
        log.info("%s received: stopping", received.name)
        stop.set()

    for number in SIGNALS:
        loop.add_signal_handler(number, on_signal, number)
    try:
        async with App.running(settings) as app:
            code = await _serve(app, stop)
    except StartupError as error:  # one line: the database, the instance lock, a port
        log.error("%s", error)
        return 1
    finally:
        for number in SIGNALS:
            loop.remove_signal_handler(number)
    log.info("stopped")
    return code


async def _serve(app: App, stop: asyncio.Event) -> int:
    runner: Runner = PollingRunner(app) if app.settings.mode == "polling" else WebhookRunner(app)
    running = asyncio.create_task(_start_and_wait(runner), name="run-mode")
    waits = [running, asyncio.create_task(stop.wait()), asyncio.create_task(app.lock_lost.wait())]
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in waits:
        task.cancel()
    outcome, *_ = await asyncio.gather(*waits, return_exceptions=True)
    await runner.stop()
    if isinstance(outcome, Exception):
        if isinstance(outcome, StartupError):  # a port that cannot be taken: one line
            log.error("%s", outcome)
        elif isinstance(outcome, TelegramAPIError | OSError):
            log.error("%s mode failed: %s: %s", app.settings.mode, type(outcome).__name__, outcome)
        else:
            log.error("%s mode failed", app.settings.mode, exc_info=outcome)
        return 1
    return 1 if app.lock_lost.is_set() else 0


async def _start_and_wait(runner: Runner) -> None:
    await runner.start()
    await runner.wait()

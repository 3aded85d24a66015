"""Shared fixtures: the three stand-ins on loopback, settings pointing at them, and a bot
polling the Telegram stand-in exactly as it would poll Telegram."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from bot.app import App
from bot.log_setup import QUIET_LOGGERS
from bot.settings import Settings, load_settings
from sandbox.getcourse import GetCourseStandIn
from sandbox.salebot import SalebotStandIn
from sandbox.telegram import SentMessage, TelegramStandIn

if TYPE_CHECKING:
    from tests.routing import Routed

TOKEN = "123456789:SANDBOX-token_for-tests"
GETCOURSE_KEY = "gc-test-key-1234567890"
SALEBOT_KEY = "sb-test-key-0987654321"
FUNNEL_BOT = "school_funnel_bot"
OPERATOR_ID = 900000001


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Tests that configure logging as ``python -m bot`` does leave the root logger as found."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)


@dataclass
class StandIns:
    telegram: TelegramStandIn
    getcourse: GetCourseStandIn
    salebot: SalebotStandIn
    database_path: Path

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "bot_token": TOKEN,
            "telegram_api_url": self.telegram.base_url,
            "operator_ids": str(OPERATOR_ID),
            "getcourse_base_url": self.getcourse.base_url,
            "getcourse_api_key": GETCOURSE_KEY,
            "getcourse_poll_first_delay": 0.01,
            "getcourse_poll_max_interval": 0.05,
            "getcourse_lookup_timeout": 5,
            "salebot_api_key": SALEBOT_KEY,
            "salebot_base_url": self.salebot.base_url,
            "salebot_bot_username": FUNNEL_BOT,
            "salebot_retry_first_delay": 0.05,
            "salebot_retry_max_delay": 0.2,
            "database_path": self.database_path,
            # Scheduled syncs would add exports to every test's request log; tests run them.
            "getcourse_full_sync_hours": 0,
            "getcourse_incremental_sync_minutes": 0,
            "getcourse_coalesce_seconds": 0,
            "getcourse_queued_notice_seconds": 0,
            # Pacing would hold a test's second export for minutes; its own tests switch it on.
            "getcourse_pace_lookups": False,
            # Tests run side by side: never the fixed default port.
            "health_listen": f"127.0.0.1:{free_port()}",
            # Today's flow (a found email is linked at once) for the suite; the proof of
            # ownership has its own tests (tests/test_ownership_proof.py).
            "ownership_proof": "off",
        }
        values.update(overrides)
        return load_settings(_env_file=None, **values)


@pytest.fixture
async def standins(tmp_path: Path) -> AsyncIterator[StandIns]:
    servers = StandIns(
        telegram=TelegramStandIn(token=TOKEN),
        getcourse=GetCourseStandIn.from_seed(api_key=GETCOURSE_KEY),
        salebot=SalebotStandIn.from_seed(api_key=SALEBOT_KEY),
        database_path=tmp_path / "bot.sqlite3",
    )
    await servers.telegram.start()
    await servers.getcourse.start()
    await servers.salebot.start()
    try:
        yield servers
    finally:
        await servers.telegram.stop()
        await servers.getcourse.stop()
        await servers.salebot.stop()


@contextlib.asynccontextmanager
async def polling_bot(standins: StandIns, settings: Settings | None = None) -> AsyncIterator[App]:
    """The real application polling the Telegram stand-in; stopped on the way out."""
    async with App.running(settings or standins.settings()) as app:
        task = asyncio.create_task(app.run_polling(handle_signals=False))
        await standins.telegram.wait_for_poll()
        try:
            yield app
        finally:
            await app.dispatcher.stop_polling()
            await task


@pytest.fixture
async def app(standins: StandIns) -> AsyncIterator[App]:
    async with polling_bot(standins) as running:
        yield running


@dataclass
class Person:
    """A Telegram user chatting with the bot through the stand-in."""

    telegram: TelegramStandIn
    user_id: int
    seen: int = field(default=0)

    def says(self, text: str, **message_fields: Any) -> dict[str, Any]:
        return self.telegram.send_message(self.user_id, text, **message_fields)

    async def reply(
        self, containing: str | Callable[[SentMessage], bool] | None = None
    ) -> SentMessage:
        """The next message the bot sends this person (optionally the next one matching)."""
        predicate = _matcher(containing)
        found = await self.telegram.wait_for_message(self.user_id, predicate, after=self.seen)
        ids = [message.message_id for message in self.telegram.bot_messages(self.user_id)]
        self.seen = ids.index(found.message_id) + 1
        return found

    def texts(self) -> list[str]:
        return [m.text or "" for m in self.telegram.bot_messages(self.user_id)]


def _matcher(
    containing: str | Callable[[SentMessage], bool] | None,
) -> Callable[[SentMessage], bool] | None:
    if containing is None or callable(containing):
        return containing
    return lambda message: containing in (message.text or "")


async def eventually(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool], within: float = 5.0
) -> None:
    """Poll ``check`` until it holds, failing after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(0.01)


@pytest.fixture
async def routed(standins: StandIns) -> AsyncIterator[Routed]:
    """The real Dispatcher fed updates directly, lookups answered by a fake directory."""
    from tests.routing import routed_for

    async for value in routed_for(standins):
        yield value

"""Shared fixtures: the stand-in world (``sandbox/world.py``) with the suite's fast timings, a bot
polling the Telegram stand-in exactly as it would poll Telegram, and a bare migrated database."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from bot.app import App
from bot.log_setup import QUIET_LOGGERS
from bot.settings import Settings
from sandbox.demo import FUNNEL_BOT, GETCOURSE_KEY, OPERATOR_ID, SALEBOT_KEY, TOKEN, WEBHOOK_SECRET
from sandbox.telegram import SentMessage, TelegramStandIn
from sandbox.world import StandInWorld, free_port, stand_in_world
from services.storage.database import Database

if TYPE_CHECKING:
    from tests.routing import Routed

# The demo school's names and the world's free_port, imported by the tests from here.
__all__ = [
    "FUNNEL_BOT",
    "GETCOURSE_KEY",
    "OPERATOR_ID",
    "SALEBOT_KEY",
    "TOKEN",
    "WEBHOOK_SECRET",
    "free_port",
]

StandIns = StandInWorld  # the tests' name for the world
# The suite's settings on every world: fast polls and retries; no scheduled syncs (they would add
# exports to every test's request log; tests run them); no pacing (it would hold a test's second
# export for minutes; its own tests switch it on). The proof of ownership is off, as in every
# world unless asked (its own tests: tests/test_ownership_proof.py).
TEST_SETTINGS: dict[str, Any] = {
    "getcourse_poll_first_delay": 0.01,
    "getcourse_poll_max_interval": 0.05,
    "getcourse_lookup_timeout": 5,
    "salebot_retry_first_delay": 0.05,
    "salebot_retry_max_delay": 0.2,
    "getcourse_full_sync_hours": 0,
    "getcourse_incremental_sync_minutes": 0,
    "getcourse_coalesce_seconds": 0,
    "getcourse_queued_notice_seconds": 0,
    "getcourse_pace_lookups": False,
}


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


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated database of its own, for tests of a service without the running app."""
    opened = await Database.open(tmp_path / "bot.sqlite3")
    yield opened
    await opened.close()


@pytest.fixture
async def standins(tmp_path: Path) -> AsyncIterator[StandIns]:
    async with stand_in_world(tmp_path, settings=TEST_SETTINGS) as world:
        yield world


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

"""Every middleware of the dispatcher, and the one place that installs them (``install``).

Outer middlewares on ``update`` (every update, whatever router handles it): log context,
metrics, the sender's Telegram profile. On ``message`` and ``callback_query``: flood control and
"this person is back"."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiogram import BaseMiddleware, Dispatcher
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.types import Chat, Message, TelegramObject, Update, User
from aiogram.types.update import UpdateTypeLookupError

import handlers
from bot.log_setup import log_context
from bot.metrics import Metrics
from services.console.profiles import ProfileBook
from services.reachability import Reachability
from services.salebot.outbox import OutboxWorker
from services.storage.profiles import TelegramProfile

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


def install(
    dispatcher: Dispatcher,
    *,
    language: str,
    operator_ids: frozenset[int],
    outbox: OutboxWorker,
    reachability: Reachability,
    metrics: Metrics | None,
) -> None:
    dispatcher.update.outer_middleware(LogContextMiddleware())
    if metrics is not None:
        dispatcher.update.outer_middleware(UpdateMetricsMiddleware(metrics))
    dispatcher.update.outer_middleware(ProfileMiddleware())
    for observer in (dispatcher.message, dispatcher.callback_query):
        observer.outer_middleware(
            FloodGuard(handlers.said(language, "slow_down"), exempt=operator_ids)
        )
        observer.outer_middleware(PersonIsBack(outbox, reachability))


class LogContextMiddleware(BaseMiddleware):
    """Every log line written while an update is handled carries its ID and the user's."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        user = data.get("event_from_user")
        user_id = user.id if isinstance(user, User) else None
        with log_context(update_id=event.update_id, user_id=user_id):
            return await handler(event, data)


class UpdateMetricsMiddleware(BaseMiddleware):
    """Counts every update by type and outcome and times its handling (outer, on ``update``)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        try:
            kind = event.event_type
        except UpdateTypeLookupError:
            kind = "unknown"
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await handler(event, data)
            outcome = "unhandled" if result is UNHANDLED else "handled"
            return result
        finally:
            self._metrics.handling_seconds.labels(kind).observe(time.perf_counter() - started)
            self._metrics.updates.labels(kind, outcome).inc()


@dataclass
class _Window:
    started: float
    count: int = 0
    warned: bool = False


class FloodGuard(BaseMiddleware):
    """At most ``limit`` updates per person per ``per`` seconds reach the handlers; the rest
    are dropped, with one polite "slow down" per window. A flood of one person then costs the
    bot almost nothing, and everyone else is answered as usual. Operators (``exempt``) work
    in bursts on purpose and are never held back."""

    def __init__(
        self,
        warning: str,
        exempt: frozenset[int] = frozenset(),
        limit: int = 10,
        per: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._warning = warning  # said once to a sender as their updates start being dropped
        self._exempt = exempt
        self._limit = limit
        self._per = per
        self._clock = clock
        self._windows: dict[int, _Window] = {}

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user = data.get("event_from_user")
        if not isinstance(user, User) or user.id in self._exempt:
            return await handler(event, data)
        now = self._clock()
        window = self._windows.get(user.id)
        if window is None or now - window.started >= self._per:
            self._forget_old(now)
            window = self._windows[user.id] = _Window(started=now)
        window.count += 1
        if window.count <= self._limit:
            return await handler(event, data)
        if not window.warned:
            window.warned = True
            log.warning("telegram %s floods the bot; dropping updates for a while", user.id)
            if isinstance(event, Message):
                await event.answer(self._warning)
        return None

    def _forget_old(self, now: float) -> None:
        # Bounded memory: windows that ended are of no use.
        if len(self._windows) > 1000:
            self._windows = {
                uid: w for uid, w in self._windows.items() if now - w.started < self._per
            }


class PersonIsBack(BaseMiddleware):
    """Someone wrote to us from a private chat: they can be reached again, and a Salebot write
    that waits for their Salebot client is tried now (they may have just started that bot)."""

    def __init__(self, outbox: OutboxWorker, reachability: Reachability) -> None:
        self._outbox = outbox
        self._reachability = reachability

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user = data.get("event_from_user")
        chat = data.get("event_chat")
        if isinstance(user, User) and isinstance(chat, Chat) and chat.type == "private":
            await self._reachability.wrote_to_us(user.id)
            await self._outbox.person_is_back(user.id)
        return await handler(event, data)


class ProfileMiddleware(BaseMiddleware):
    """An outer middleware on updates (after aiogram has found ``event_from_user``)."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user = data.get("event_from_user")
        chat = data.get("event_chat")
        book: ProfileBook = data["profile_book"]
        # Only from private chats: someone merely present in the operators' chat is not kept.
        private = isinstance(chat, Chat) and chat.type == "private"
        if isinstance(user, User) and not user.is_bot and private:
            try:
                await book.saw(TelegramProfile(user.id, user.username, user.first_name))
            except Exception:
                # Only lookups by @username lose by it; the person still gets their answer.
                log.exception("could not store the profile of telegram %s", user.id)
        return await handler(event, data)

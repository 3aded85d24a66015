"""Outer middlewares of the student-facing side: flood control and "this person is back"."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Chat, Message, TelegramObject, User

from handlers.texts import Texts
from services.outbox import OutboxWorker
from services.reachability import Reachability

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


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
        exempt: frozenset[int] = frozenset(),
        limit: int = 10,
        per: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
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
            texts = data.get("texts")
            if isinstance(event, Message) and isinstance(texts, Texts):
                await event.answer(texts.render("slow_down"))
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

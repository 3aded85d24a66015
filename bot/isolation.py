"""One person's updates one after another, everyone else's in parallel, in bounded memory.

aiogram's ``SimpleEventIsolation`` keeps a lock for every chat it has ever seen; a bot that
thousands of people write to once would keep them all. Here a chat's lock lives only while an
update of that chat is being handled or waits its turn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiogram.fsm.storage.base import BaseEventIsolation, StorageKey


@dataclass
class _Turn:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    holders: int = 0  # the update being handled and those waiting behind it


class PerChatIsolation(BaseEventIsolation):
    def __init__(self) -> None:
        self._turns: dict[StorageKey, _Turn] = {}

    @asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncGenerator[None, None]:
        turn = self._turns.setdefault(key, _Turn())
        turn.holders += 1
        try:
            async with turn.lock:
                yield
        finally:
            turn.holders -= 1
            # Identity check: ``close`` may have dropped the turns while this one was held.
            if turn.holders == 0 and self._turns.get(key) is turn:
                del self._turns[key]

    @property
    def chats_in_progress(self) -> int:
        return len(self._turns)

    async def close(self) -> None:
        self._turns.clear()

"""Remembering who writes to the bot (Telegram username and first name), for operator lookups.

Called on every update, so an unchanged profile costs no database write: the last profile
stored for each recent person is kept in memory."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from services.storage.database import Database
from services.storage.profiles import ProfileRepository, TelegramProfile

# People remembered in memory; anyone beyond costs one write when they next write.
REMEMBERED = 10_000


class ProfileBook:
    def __init__(self, database: Database, clock: Callable[[], float] = time.time) -> None:
        self._profiles = ProfileRepository(database)
        self._clock = clock
        self._stored: OrderedDict[int, TelegramProfile] = OrderedDict()

    async def saw(self, profile: TelegramProfile) -> None:
        if self._stored.get(profile.telegram_id) == profile:
            self._stored.move_to_end(profile.telegram_id)
            return
        await self._profiles.save(profile, self._clock())
        self._stored[profile.telegram_id] = profile
        self._stored.move_to_end(profile.telegram_id)
        if len(self._stored) > REMEMBERED:
            self._stored.popitem(last=False)

    def forget(self, telegram_id: int) -> None:
        """The person was erased: their next update stores their profile afresh."""
        self._stored.pop(telegram_id, None)

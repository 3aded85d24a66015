"""Waiting for the stand-in to reach a state, without sleeping: whatever changes what a test
can see (an API call, a webhook delivery, a long poll starting to wait) notifies, and waiters
look again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

_T = TypeVar("_T")


class Changes:
    def __init__(self) -> None:
        self._changed = asyncio.Condition()

    async def notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def first(self, find: Callable[[], _T | None], within: float) -> _T | None:
        """What ``find`` returns once it returns something, or None after ``within`` seconds."""
        found: _T | None = None

        def check() -> bool:
            nonlocal found
            found = find()
            return found is not None

        try:
            async with asyncio.timeout(within), self._changed:
                await self._changed.wait_for(check)
        except TimeoutError:
            return None
        return found

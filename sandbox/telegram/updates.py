"""The updates waiting for the bot: numbered in order, filtered by allowed_updates, handed out
by getUpdates long polls (or taken by the webhook delivery) until acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from sandbox.telegram.changes import Changes

# Update types Telegram only delivers when allowed_updates names them explicitly.
_OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


def _update_type(update: dict[str, Any]) -> str:
    return next((key for key in update if key != "update_id"), "")


class UpdateQueue:
    def __init__(self, changes: Changes) -> None:
        self._changes = changes
        self.pending: list[dict[str, Any]] = []
        self._next_update_id = 1
        # Replaced on every arrival so a waiter waits on the generation it last inspected.
        self._arrived = asyncio.Event()
        self._allowed_updates: list[str] = []
        self.closing = False
        self.polls_waiting = 0

    def numbered(self, update: dict[str, Any]) -> dict[str, Any]:
        """The update with the next ``update_id`` unless it has one; later ones follow it."""
        numbered = {"update_id": self._next_update_id, **update}
        self._next_update_id = max(self._next_update_id, int(numbered["update_id"]) + 1)
        return numbered

    def add(self, update: dict[str, Any]) -> int:
        """Queue the update (numbered if it is not); returns its ``update_id``."""
        update = self.numbered(update)
        self.pending.append(update)
        self.wake()
        return int(update["update_id"])

    def wake(self) -> None:
        """Tell whoever waits for updates to look again."""
        arrived, self._arrived = self._arrived, asyncio.Event()
        arrived.set()

    def close(self) -> None:
        """Release the waiting long polls (shutdown must not wait for their timeouts)."""
        self.closing = True
        self.wake()

    def allow(self, allowed_updates: list[Any] | None) -> None:
        """A setting that sticks for later calls, as in Telegram; None keeps the last one."""
        if allowed_updates is not None:
            self._allowed_updates = [str(kind) for kind in allowed_updates]

    def clear(self) -> None:
        self.pending.clear()

    def remove(self, update: dict[str, Any]) -> None:
        # By identity: a drop_pending_updates meanwhile may have emptied the queue.
        self.pending = [u for u in self.pending if u is not update]

    def acknowledge(self, offset: int) -> None:
        """getUpdates' offset: forget the updates before it (a negative one keeps the last)."""
        if offset > 0:
            self.pending = [u for u in self.pending if u["update_id"] >= offset]
        elif offset < 0:
            self.pending = self.pending[offset:]

    def deliverable(self) -> tuple[list[dict[str, Any]], asyncio.Event]:
        """The pending updates of the allowed types (the others are dropped, as Telegram does),
        and the event that is set when anything new happens after this look."""
        arrived = self._arrived
        self.pending = [u for u in self.pending if self._is_allowed(u)]
        return self.pending, arrived

    async def long_poll(self, limit: int, seconds: int) -> list[dict[str, Any]]:
        """Up to ``limit`` deliverable updates, waiting up to ``seconds`` for one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            pending, arrived = self.deliverable()
            remaining = deadline - loop.time()
            if pending or remaining <= 0 or self.closing:
                return pending[:limit]
            self.polls_waiting += 1
            try:
                await self._changes.notify()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(arrived.wait(), remaining)
            finally:
                self.polls_waiting -= 1

    def _is_allowed(self, update: dict[str, Any]) -> bool:
        kind = _update_type(update)
        if self._allowed_updates:
            return kind in self._allowed_updates
        return kind not in _OPT_IN_UPDATES

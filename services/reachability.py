"""Who can be written to: a person who blocked the bot (Telegram 403) is marked, so nothing
keeps trying to reach them, and unmarked as soon as they write again."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from services.storage.database import Database

log = logging.getLogger(__name__)


class Reachability:
    def __init__(self, database: Database, clock: Callable[[], float] = time.time) -> None:
        self._database = database
        self._clock = clock
        # Most people never block the bot: remembering who did saves a write per update.
        self._blocked: set[int] | None = None

    async def blocked_by(self, telegram_id: int) -> None:
        since = datetime.fromtimestamp(self._clock(), UTC).isoformat()
        async with self._database.transaction() as tx:
            await tx.execute(
                "INSERT OR IGNORE INTO blocked_chats (telegram_id, since) VALUES (?, ?)",
                (telegram_id, since),
            )
        (await self._known()).add(telegram_id)
        log.info("telegram %s blocked the bot; not writing to them until they write", telegram_id)

    async def wrote_to_us(self, telegram_id: int) -> None:
        blocked = await self._known()
        if telegram_id not in blocked:
            return
        async with self._database.transaction() as tx:
            await tx.execute("DELETE FROM blocked_chats WHERE telegram_id = ?", (telegram_id,))
        blocked.discard(telegram_id)
        log.info("telegram %s is reachable again", telegram_id)

    def forget(self, telegram_id: int) -> None:
        """The person was erased (their ``blocked_chats`` row with them)."""
        if self._blocked is not None:
            self._blocked.discard(telegram_id)

    async def is_blocked(self, telegram_id: int) -> bool:
        return telegram_id in await self._known()

    async def _known(self) -> set[int]:
        if self._blocked is None:
            rows = await self._database.fetchall("SELECT telegram_id FROM blocked_chats")
            self._blocked = {int(row["telegram_id"]) for row in rows}
        return self._blocked

"""Letting running work finish on shutdown, within a bound."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Set
from typing import Any

log = logging.getLogger(__name__)


async def finish_tasks(tasks: Set[asyncio.Task[Any]], deadline: float, what: str) -> None:
    """Wait until every task in ``tasks`` is done or the loop clock passes ``deadline``, then
    cancel what is left. ``tasks`` may be a live set that its owner adds to and discards from
    (aiogram's sets of update handlers): it is looked at again after every wait."""
    loop = asyncio.get_running_loop()
    while pending := {task for task in tasks if not task.done()}:
        remaining = deadline - loop.time()
        if remaining <= 0:
            log.warning(
                "%d %s still running at the shutdown deadline: cancelled", len(pending), what
            )
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            return
        await asyncio.wait(pending, timeout=remaining)

"""Keeping the bot's long-running background loops running.

Every loop (the outbox, queued lookups and their deliveries, scheduled syncs, operator notices,
the instance-lock heartbeat) runs under one ``Supervisor``. A loop that raises is logged with its
traceback and started again after a backoff; "database is locked" (another connection holding
SQLite's write lock past the wait of ``Database.transaction``) is logged without one, since it
is no bug, and waited out the same way. Readiness and the operators' ``/health`` read
``Supervisor.statuses``: a loop is healthy while it runs and has run ``settle`` seconds since
its last restart, so a loop that keeps failing never looks healthy between two failures."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from services.backoff import RetryPolicy
from services.storage.database import is_database_locked

log = logging.getLogger(__name__)

Body = Callable[[], Awaitable[None]]


class LoopState(StrEnum):
    RUNNING = "running"
    RECOVERING = "recovering"  # started again, not yet running ``settle`` seconds since
    RESTARTING = "restarting"  # failed; waiting out the backoff before starting again
    WAITING_FOR_DATABASE = "waiting_for_database"  # another connection held the write lock
    FINISHED = "finished"  # returned on its own: stopped, or nothing to do in this setup
    STOPPED = "stopped"  # cancelled: the bot is stopping, or someone ended it


@dataclass(frozen=True)
class LoopStatus:
    name: str
    state: LoopState
    healthy: bool
    restarts: int  # since the bot started
    last_error: str | None  # the exception's type, "database is locked" for that case
    last_failure_at: float | None  # Unix seconds


class _Loop:
    def __init__(self, name: str) -> None:
        self.name = name
        self.state = LoopState.RUNNING
        self.restarts = 0
        self.failures_in_a_row = 0
        self.last_error: str | None = None
        self.last_failure_at: float | None = None
        self.started_at = 0.0  # monotonic time of the latest start


class Supervisor:
    """Starts each loop as a task that outlives the loop's failures.

    ``backoff`` and ``settle`` are public so a test or a benchmark can shorten them."""

    def __init__(
        self,
        backoff: RetryPolicy | None = None,
        settle: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.backoff = backoff or RetryPolicy(first_delay=1.0, max_delay=60.0)
        self.settle = settle
        self._clock = clock
        self._wall_clock = wall_clock
        self._loops: dict[str, _Loop] = {}
        self._stopping = asyncio.Event()

    def start(self, name: str, body: Body) -> asyncio.Task[None]:
        """Run ``body()`` (a fresh call each start) until it returns or is cancelled."""
        if name in self._loops:
            raise ValueError(f"a loop called {name!r} is already supervised")
        loop = self._loops[name] = _Loop(name)
        return asyncio.create_task(self._keep(loop, body), name=name)

    def stop(self) -> None:
        """The bot is stopping: a loop that fails from now on is not started again."""
        self._stopping.set()

    def statuses(self) -> list[LoopStatus]:
        return [self._status(loop, self._clock()) for loop in self._loops.values()]

    def _status(self, loop: _Loop, now: float) -> LoopStatus:
        state = loop.state
        if state is LoopState.RUNNING and loop.restarts and now - loop.started_at < self.settle:
            state = LoopState.RECOVERING
        return LoopStatus(
            name=loop.name,
            state=state,
            healthy=state in (LoopState.RUNNING, LoopState.FINISHED),
            restarts=loop.restarts,
            last_error=loop.last_error,
            last_failure_at=loop.last_failure_at,
        )

    async def _keep(self, loop: _Loop, body: Body) -> None:
        while True:
            loop.state = LoopState.RUNNING
            loop.started_at = self._clock()
            try:
                await body()
            except asyncio.CancelledError:
                loop.state = LoopState.STOPPED
                raise
            except Exception as error:
                if not await self._after_failure(loop, error):
                    return
                continue
            loop.state = LoopState.FINISHED
            log.info("background loop %s finished", loop.name)
            return

    async def _after_failure(self, loop: _Loop, error: Exception) -> bool:
        """Record and log the failure, wait out the backoff; ``False`` when not to restart."""
        if self._clock() - loop.started_at >= self.settle:
            loop.failures_in_a_row = 0  # it had been running fine: start again soon
        loop.failures_in_a_row += 1
        loop.last_failure_at = self._wall_clock()
        delay = self.backoff.delay(loop.failures_in_a_row)
        locked = isinstance(error, sqlite3.OperationalError) and is_database_locked(error)
        if locked:
            loop.state = LoopState.WAITING_FOR_DATABASE
            loop.last_error = "database is locked"
            log.warning(
                "background loop %s: the database is locked by another connection; "
                "starting again in %.1fs",
                loop.name,
                delay,
            )
        else:
            loop.state = LoopState.RESTARTING
            loop.last_error = type(error).__name__
            log.error(
                "background loop %s failed (failure %d in a row); starting again in %.1fs",
                loop.name,
                loop.failures_in_a_row,
                delay,
                exc_info=error,
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)
        if self._stopping.is_set():
            loop.state = LoopState.STOPPED
            return False
        loop.restarts += 1
        log.info("background loop %s starting again (restart %d)", loop.name, loop.restarts)
        return True

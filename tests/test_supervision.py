"""Background loops under the supervisor: a loop that raises is logged and started again,
``database is locked`` is waited out, ``/readyz`` and the operators' ``/health`` show a loop
that is failing until it recovers. The locks come from a real second sqlite3 connection."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import App
from services.backoff import RetryPolicy
from services.storage.database import Database
from services.supervision import LoopState, LoopStatus, Supervisor
from tests.conftest import (
    FUNNEL_BOT,
    OPERATOR_ID,
    Person,
    StandIns,
    eventually,
    free_port,
    polling_bot,
)
from tests.operator_console import plain
from tests.running import get, serving
from tests.test_run_modes import metric

IVAN = 100000001
QUICK = RetryPolicy(first_delay=0.02, max_delay=0.05, jitter=0)
SETTLE = 0.3
LOCK_HELD_FOR = 7.0  # longer than SQLite's busy_timeout (5 s), as in the issue


class SecondConnection:
    """Another process's connection to the bot's database (an ``sqlite3`` shell, a backup),
    used from a worker thread so that waiting on SQLite never blocks the event loop."""

    def __init__(self, path: Path) -> None:
        self._connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    async def execute(self, sql: str) -> None:
        await asyncio.to_thread(self._connection.execute, sql)

    def close(self) -> None:
        self._connection.close()


@pytest.fixture
def second_connection(tmp_path: Path) -> Iterator[Callable[[Path], SecondConnection]]:
    opened: list[SecondConnection] = []

    def connect(path: Path) -> SecondConnection:
        opened.append(SecondConnection(path))
        return opened[-1]

    yield connect
    for connection in opened:
        connection.close()


def status_of(supervisor: Supervisor, name: str) -> LoopStatus:
    return next(status for status in supervisor.statuses() if status.name == name)


# -- the supervisor on its own ---------------------------------------------------------------


async def test_a_loop_that_raises_is_logged_and_started_again_until_it_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    supervisor = Supervisor(QUICK, settle=SETTLE)
    calls = 0
    may_run = asyncio.Event()

    async def body() -> None:
        nonlocal calls
        calls += 1
        if calls <= 3:
            await may_run.wait()
            raise RuntimeError("a bug")
        await asyncio.Event().wait()  # runs for good

    task = supervisor.start("flaky", body)
    try:
        assert status_of(supervisor, "flaky").healthy
        may_run.set()
        await eventually(lambda: not status_of(supervisor, "flaky").healthy)
        await eventually(lambda: calls == 4)
        # Running again, but not for long enough to count as recovered.
        assert not status_of(supervisor, "flaky").healthy
        await eventually(lambda: status_of(supervisor, "flaky").healthy)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    status = status_of(supervisor, "flaky")
    assert (status.restarts, status.last_error) == (3, "RuntimeError")
    assert status.last_failure_at is not None
    assert status.state is LoopState.STOPPED
    assert not status.healthy
    failures = [r for r in caplog.records if "background loop flaky failed" in r.getMessage()]
    assert len(failures) == 3
    assert all(r.levelno == logging.ERROR and r.exc_info for r in failures)  # the traceback


async def test_a_loop_that_returns_is_finished_and_not_started_again() -> None:
    supervisor = Supervisor(QUICK, settle=SETTLE)
    calls = 0

    async def body() -> None:
        nonlocal calls
        calls += 1

    await supervisor.start("nothing_to_do", body)
    assert calls == 1
    status = status_of(supervisor, "nothing_to_do")
    assert (status.state, status.healthy, status.restarts) == (LoopState.FINISHED, True, 0)


async def test_a_loop_failing_while_the_bot_stops_stays_down() -> None:
    supervisor = Supervisor(RetryPolicy(first_delay=60.0, max_delay=60.0), settle=SETTLE)
    calls = 0

    async def body() -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("broken")

    task = supervisor.start("broken", body)
    await eventually(lambda: status_of(supervisor, "broken").state is LoopState.RESTARTING)
    supervisor.stop()  # ends the 60 s backoff at once
    await asyncio.wait_for(task, 2.0)
    assert calls == 1
    assert status_of(supervisor, "broken").state is LoopState.STOPPED


async def test_a_write_waits_out_another_connections_lock(
    database: Database,
    second_connection: Callable[[Path], SecondConnection],
    caplog: pytest.LogCaptureFixture,
) -> None:
    await database.connection.execute("PRAGMA busy_timeout=50")  # many tries in a short test
    other = second_connection(database.path)
    await other.execute("BEGIN IMMEDIATE")
    write = asyncio.create_task(_write_lock_row(database))
    await eventually(lambda: "database is locked by another" in caplog.text)
    # Reads go on meanwhile: the write lets the transaction lock go between its tries.
    assert await asyncio.wait_for(database.fetchone("SELECT 1"), 1.0) is not None
    assert not write.done()
    await other.execute("ROLLBACK")
    await asyncio.wait_for(write, 5.0)
    row = await database.fetchone("SELECT owner FROM instance_lock")
    assert row is not None
    assert row["owner"] == "test"


async def test_database_locked_beyond_the_wait_is_waited_out_by_the_supervisor(
    database: Database,
    second_connection: Callable[[Path], SecondConnection],
    caplog: pytest.LogCaptureFixture,
) -> None:
    await database.connection.execute("PRAGMA busy_timeout=20")
    database.lock_patience = 0.0  # every locked write fails at once, up to the supervisor
    other = second_connection(database.path)
    await other.execute("BEGIN IMMEDIATE")
    supervisor = Supervisor(QUICK, settle=SETTLE)

    async def writer() -> None:
        await _write_lock_row(database)
        await asyncio.Event().wait()

    task = supervisor.start("writer", writer)
    try:
        await eventually(lambda: status_of(supervisor, "writer").restarts >= 2)
        status = status_of(supervisor, "writer")
        assert status.last_error == "database is locked"
        assert not status.healthy
        await other.execute("ROLLBACK")
        await eventually(lambda: status_of(supervisor, "writer").healthy)
        assert await database.fetchone("SELECT owner FROM instance_lock") is not None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    waits = [r for r in caplog.records if "database is locked by another" in r.getMessage()]
    assert waits
    assert not any(r.exc_info for r in waits)
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)


async def _write_lock_row(database: Database) -> None:
    async with database.transaction() as tx:
        await tx.execute(
            "INSERT OR REPLACE INTO instance_lock "
            "(id, owner, host, pid, mode, acquired_at, heartbeat_at) "
            "VALUES (1, 'test', 'host', 1, 'polling', 0, 0)"
        )


# -- in the running bot ----------------------------------------------------------------------


def quick_supervisor(app: App) -> None:
    app.services.supervisor.backoff = QUICK
    app.services.supervisor.settle = SETTLE


async def readiness(listen: str) -> tuple[int, dict[str, Any]]:
    response = await get(listen, "/readyz")
    return response.status_code, response.json()["checks"]


async def test_a_failing_loop_turns_readiness_red_until_it_recovers_and_operators_see_it(
    standins: StandIns, second_connection: Callable[[Path], SecondConnection]
) -> None:
    listen = f"127.0.0.1:{free_port()}"
    settings = standins.settings(health_listen=listen)
    operator = Person(standins.telegram, OPERATOR_ID)
    async with serving(standins, settings) as app:
        quick_supervisor(app)
        status, checks = await readiness(listen)
        assert status == 200
        assert set(checks["background"]["loops"]) == {
            "outbox",
            "queued_lookups",
            "directory_sync",
            "retention_cleanup",
            "instance_lock",
        }
        # The queue's table goes away under it: each of its runs fails at once.
        other = second_connection(standins.database_path)
        await other.execute("ALTER TABLE queued_lookups RENAME TO queued_lookups_away")
        app.services.lookups.wake()

        async def red() -> bool:
            code, checks = await readiness(listen)
            loop = checks["background"]["loops"]["queued_lookups"]
            return code == 503 and loop["state"] == "restarting" and loop["restarts"] >= 1

        await eventually(red)
        scraped = (await get(listen, "/metrics")).text
        assert metric(scraped, "bot_background_loop_healthy", loop="queued_lookups") == 0
        assert metric(scraped, "bot_background_loop_healthy", loop="outbox") == 1
        assert metric(scraped, "bot_background_loop_restarts", loop="queued_lookups") >= 1

        # The table is back; until the loop has run a while it is not counted as well again.
        app.services.supervisor.settle = 600.0
        await other.execute("ALTER TABLE queued_lookups_away RENAME TO queued_lookups")

        async def recovering() -> bool:
            code, checks = await readiness(listen)
            loop = checks["background"]["loops"]["queued_lookups"]
            return code == 503 and loop["state"] == "recovering"

        await eventually(recovering)
        operator.says("/health")
        shown = plain((await operator.reply("Фоновые задачи")).text or "")
        assert "⚠️ очередь проверок email: снова работает после сбоя" in shown
        assert "(OperationalError)" in shown
        app.services.supervisor.settle = SETTLE

        async def green() -> bool:
            return (await readiness(listen))[0] == 200

        await eventually(green)
        loop = (await readiness(listen))[1]["background"]["loops"]["queued_lookups"]
        assert loop["ok"] is True
        assert loop["state"] == "running"
        # Working again: a person's email goes through the queue.
        ivan = Person(standins.telegram, IVAN)
        ivan.says("ivan.petrov@example.com")
        await ivan.reply("Готово")


async def test_a_7s_write_lock_kills_nothing_and_the_queue_still_answers(
    standins: StandIns,
    second_connection: Callable[[Path], SecondConnection],
    caplog: pytest.LogCaptureFixture,
) -> None:
    standins.getcourse.not_ready_polls = 1_000_000  # the export is still building
    settings = standins.settings(
        getcourse_queued_notice_seconds=0.1,
        getcourse_poll_max_interval=0.2,
        getcourse_lookup_timeout=60,
    )
    ivan = Person(standins.telegram, IVAN)
    async with polling_bot(standins, settings) as app:
        ivan.says("ivan.petrov@example.com")
        await ivan.reply("Сейчас")  # waiting in the queue
        other = second_connection(standins.database_path)
        loop = asyncio.get_running_loop()
        await other.execute("BEGIN IMMEDIATE")
        locked_at = loop.time()
        standins.getcourse.not_ready_polls = 0  # the export is ready: the bot needs to write
        await eventually(lambda: "database is locked by another" in caplog.text, within=10)
        await asyncio.sleep(max(0.0, locked_at + LOCK_HELD_FOR - loop.time()))
        await other.execute("ROLLBACK")

        await ivan.reply("Готово")
        client = standins.salebot.client_by_platform_id(IVAN, FUNNEL_BOT)
        assert client is not None
        await eventually(lambda: "gc_user_id" in standins.salebot.client_variables(client.id))
        statuses = app.services.supervisor.statuses()
        assert all(s.healthy and s.restarts == 0 for s in statuses), statuses
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)

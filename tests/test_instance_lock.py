"""One bot process per database: refused while the holder lives, taken over after a crash."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from services.errors import InstanceLockHeld
from services.storage.database import Database
from services.storage.instance_lock import LOCK_TTL, InstanceLock


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def other_host_lock(database: Database, clock: Clock, host: str) -> InstanceLock:
    return InstanceLock(database, "polling", clock=clock, host=host, pid=4242)


async def test_second_instance_is_refused_with_who_holds_it(
    database: Database, clock: Clock
) -> None:
    first = other_host_lock(database, clock, "vps-1")
    await first.acquire()
    clock.now += 5

    with pytest.raises(InstanceLockHeld) as refused:
        await other_host_lock(database, clock, "vps-2").acquire()
    message = str(refused.value)
    assert "pid 4242 on vps-1" in message
    assert "polling mode, last heartbeat 5s ago" in message
    assert str(database.path) in message


async def test_released_lock_is_free_again(database: Database, clock: Clock) -> None:
    first = other_host_lock(database, clock, "vps-1")
    await first.acquire()
    await first.release()
    await other_host_lock(database, clock, "vps-2").acquire()


async def test_lock_without_heartbeat_is_taken_over_after_the_ttl(
    database: Database, clock: Clock
) -> None:
    crashed = other_host_lock(database, clock, "vps-1")
    await crashed.acquire()
    clock.now += LOCK_TTL - 1
    with pytest.raises(InstanceLockHeld):
        await other_host_lock(database, clock, "vps-2").acquire()

    clock.now += 2
    successor = other_host_lock(database, clock, "vps-2")
    await successor.acquire()
    assert await successor.heartbeat()
    assert not await crashed.heartbeat()  # the crashed one, if it comes back, learns it lost


async def test_heartbeat_keeps_the_lock(database: Database, clock: Clock) -> None:
    holder = other_host_lock(database, clock, "vps-1")
    await holder.acquire()
    for _ in range(5):
        clock.now += LOCK_TTL - 1
        assert await holder.heartbeat()
    with pytest.raises(InstanceLockHeld):
        await other_host_lock(database, clock, "vps-2").acquire()


async def test_dead_process_on_this_host_is_taken_over_at_once(
    database: Database, clock: Clock
) -> None:
    dead = InstanceLock(database, "polling", clock=clock, host="here", pid=_dead_pid())
    await dead.acquire()
    await InstanceLock(database, "webhook", clock=clock, host="here").acquire()


async def test_own_pid_on_this_host_is_a_previous_run(database: Database, clock: Clock) -> None:
    # A container restarted after a crash runs under the same pid again.
    await InstanceLock(database, "polling", clock=clock, host="box", pid=os.getpid()).acquire()
    await InstanceLock(database, "polling", clock=clock, host="box", pid=os.getpid()).acquire()


async def test_live_process_on_this_host_keeps_it(database: Database, clock: Clock) -> None:
    await InstanceLock(database, "polling", clock=clock, host="here", pid=os.getppid()).acquire()
    with pytest.raises(InstanceLockHeld):
        await InstanceLock(database, "polling", clock=clock, host="here").acquire()


async def test_keep_reports_a_takeover(database: Database, clock: Clock) -> None:
    holder = other_host_lock(database, clock, "vps-1")
    await holder.acquire()
    clock.now += LOCK_TTL + 1  # as if this process had hung
    await other_host_lock(database, clock, "vps-2").acquire()
    lost = asyncio.Event()
    async with asyncio.timeout(5):
        await holder.keep(lost.set, interval=0.01)  # returns: it stopped beating
    assert lost.is_set()


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid

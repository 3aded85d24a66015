"""``kill -9`` at the worst moments, then a restart on the same database: nothing is lost.
The bot runs as a real ``python -m bot`` process against the stand-ins on loopback."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite

from tests.conftest import FUNNEL_BOT, Person, StandIns, eventually
from tests.running import BotProcess, process_env

IVAN = 100000001
MARIA = 100000002
ANNA = 100000003


@contextlib.asynccontextmanager
async def bot_process(standins: StandIns, cwd: Path) -> AsyncIterator[BotProcess]:
    """A polling bot process, about to poll when yielded (what is sent now waits for it in
    the stand-in's queue); SIGKILLed on the way out if still alive."""
    started = len(standins.telegram.calls)
    async with BotProcess.running(process_env(standins), cwd=cwd) as process:
        # Polling mode removes the webhook first; a dead process's long poll may still be open.
        await standins.telegram.wait_for_call("deleteWebhook", after=started, timeout=30)
        yield process


async def crash(process: BotProcess) -> None:
    process.process.send_signal(signal.SIGKILL)
    assert await process.exit_code() == -signal.SIGKILL


async def stored_links(path: Path) -> list[tuple[int, str]]:
    async with aiosqlite.connect(path) as db:
        rows = await db.execute_fetchall("SELECT telegram_id, email FROM links")
    return [(int(row[0]), str(row[1])) for row in rows]


def salebot_email(standins: StandIns, telegram_id: int) -> str | None:
    client = standins.salebot.client_by_platform_id(telegram_id, FUNNEL_BOT)
    assert client is not None
    return standins.salebot.client_variables(client.id).get("email")


async def test_kill_9_loses_nothing(standins: StandIns, tmp_path: Path) -> None:
    """One crash catches three people at three bad moments: a link stored but not yet in
    Salebot, an export being polled, a dialog half done. (One crash rather than three keeps
    the suite fast: each bot process takes seconds to import.)"""
    getcourse, salebot = standins.getcourse, standins.salebot
    ivan, maria, anna = (Person(standins.telegram, uid) for uid in (IVAN, MARIA, ANNA))
    async with bot_process(standins, tmp_path) as process:
        maria.says("pavel.lebedev@example.com")
        await maria.reply("Готово")
        await eventually(lambda: salebot_email(standins, MARIA) == "pavel.lebedev@example.com")
        maria.says("/email")  # mid-dialog: the bot waits for her new email
        await maria.reply("Пришлите email")

        salebot.set_down(True)
        ivan.says("ivan.petrov@example.com")  # stored, Salebot not written yet
        await ivan.reply("Готово")

        getcourse.not_ready_polls = 10**6
        anna.says("anna@example.org")  # an export being polled
        await anna.reply("Проверяю")
        await eventually(lambda: getcourse.requests[-1].error_code == 909)  # "not ready yet"

        await crash(process)
    started_before_restart = getcourse.exports_started()
    assert salebot_email(standins, IVAN) is None

    salebot.set_down(False)
    getcourse.not_ready_polls = 0
    getcourse.complete_exports()  # GetCourse finished building Anna's export meanwhile
    async with bot_process(standins, tmp_path):
        # Ivan's stored link reaches Salebot without him doing anything.
        await eventually(lambda: salebot_email(standins, IVAN) == "ivan.petrov@example.com", 20)
        # Anna's queued lookup is answered without her asking again, by collecting her
        # export by its saved ID rather than starting it again.
        await anna.reply("Готово")
        assert getcourse.exports_started() == started_before_restart
        # Maria's dialog continues where it was: her text is still read as the new email.
        maria.says("maria.sidorova@example.com")
        await maria.reply("Готово")
        await eventually(lambda: salebot_email(standins, MARIA) == "maria.sidorova@example.com")

    assert sorted(await stored_links(standins.database_path)) == [
        (IVAN, "ivan.petrov@example.com"),
        (MARIA, "maria.sidorova@example.com"),
        (ANNA, "anna@example.org"),
    ]

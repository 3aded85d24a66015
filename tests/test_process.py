"""``python -m bot`` as a real process against the stand-ins running in the test: SIGTERM in
the middle of work in both modes, a second instance on the same database; and the logs of whole
runs (one per format) never holding a secret.

Each child process pays for importing aiogram, so there are only two of them."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from bot.serve import serve
from services.storage.database import Database
from tests.conftest import (
    FUNNEL_BOT,
    WEBHOOK_SECRET,
    Person,
    StandIns,
    eventually,
    free_port,
    polling_bot,
)
from tests.running import SECRETS, BotProcess, process_env, serving

IVAN = 100000001
MARIA = 100000002
PETR = 100000003
# A GetCourse poll every quarter second.
SLOW_POLLS = {"GETCOURSE_POLL_FIRST_DELAY": "0.25", "GETCOURSE_POLL_MAX_INTERVAL": "0.25"}


def assert_clean_log(bot: BotProcess, log_format: str) -> None:
    log = bot.stderr
    for secret in SECRETS:
        assert secret not in log
    for trouble in ("Traceback", "Unclosed", "session is closed", "Task was destroyed"):
        assert trouble not in log, log
    if log_format == "json":
        entries = [json.loads(line) for line in bot.stderr_lines]
        assert all({"ts", "level", "logger", "event"} <= set(entry) for entry in entries)
        assert not [entry for entry in entries if entry["level"] in {"error", "critical"}], log
        # A line logged while an update was handled names it and its person.
        assert any(entry.get("user_id") == MARIA and "update_id" in entry for entry in entries)
    else:
        assert " ERROR " not in log, log
    assert bot.logged("stopped")


def salebot_has(standins: StandIns, telegram_id: int, gc_user_id: str) -> bool:
    client = standins.salebot.client_by_platform_id(telegram_id, FUNNEL_BOT)
    variables = standins.salebot.client_variables(client.id) if client else {}
    return variables.get("gc_user_id") == gc_user_id


async def link_and_stop_mid_work(standins: StandIns, bot: BotProcess) -> None:
    """Ivan's Salebot write is being delivered and Maria's lookup is running when SIGTERM
    comes; both finish before the process exits."""
    standins.salebot.delay_next("save_variables", 1.0)
    ivan = Person(standins.telegram, IVAN)
    ivan.says("ivan.petrov@example.com")
    await ivan.reply("Готово")
    await eventually(lambda: bool(standins.salebot.requests_of("save_variables")), within=10)

    # About two seconds of polling: the lookup outlasts the Salebot write, so only waiting for
    # the handler itself lets Maria hear back.
    standins.getcourse.not_ready_polls = 8
    maria = Person(standins.telegram, MARIA)
    maria.says("maria.sidorova@example.com")
    await maria.reply("Проверяю")
    bot.terminate()

    await maria.reply("Готово")
    assert await bot.exit_code() == 0, bot.stderr
    # The outbox step under way finished: Salebot took Ivan's variables, and the bot recorded
    # the delivery before it exited.
    assert salebot_has(standins, IVAN, "187654321")
    database = await Database.open(standins.database_path)
    try:
        row = await database.fetchone("SELECT state FROM outbox WHERE telegram_id = ?", (IVAN,))
    finally:
        await database.close()
    assert row is not None
    assert row["state"] == "delivered"


async def test_sigterm_in_polling_mode(
    standins: StandIns, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log_format = "json"
    env = process_env(standins, LOG_FORMAT=log_format, LOG_LEVEL="DEBUG", **SLOW_POLLS)
    async with BotProcess.running(env, cwd=tmp_path) as bot:
        await standins.telegram.wait_for_poll(timeout=30)

        # A second instance on the same database refuses to run, and says why.
        assert await serve(standins.settings()) == 1
        refusal = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert len(refusal) == 1
        assert refusal[0].startswith("Another instance is running on the database")
        assert f"pid {bot.process.pid} on " in refusal[0]

        await link_and_stop_mid_work(standins, bot)
    assert_clean_log(bot, log_format)

    # Updates that came after polling stopped wait for the next start; none is lost.
    petr = Person(standins.telegram, PETR)
    petr.says("/start")
    async with polling_bot(standins) as app:
        await petr.reply("email")
        link = await app.services.links.current_link(MARIA)
        assert link is not None
        await eventually(lambda: salebot_has(standins, MARIA, "187654323"))


async def test_sigterm_in_webhook_mode(standins: StandIns, tmp_path: Path) -> None:
    log_format = "text"
    port = free_port()
    env = process_env(
        standins,
        MODE="webhook",
        WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram/updates",
        WEBHOOK_SECRET=WEBHOOK_SECRET,
        WEBHOOK_LISTEN=f"127.0.0.1:{port}",
        LOG_FORMAT=log_format,
        LOG_LEVEL="DEBUG",
        **SLOW_POLLS,
    )
    async with BotProcess.running(env, cwd=tmp_path) as bot:
        await standins.telegram.wait_for_call("setWebhook", timeout=30)
        await link_and_stop_mid_work(standins, bot)
    assert_clean_log(bot, log_format)
    assert standins.telegram.webhook is not None  # Telegram keeps the updates meanwhile

    petr = Person(standins.telegram, PETR)
    petr.says("/start")  # refused at the closed port, retried by the stand-in
    await eventually(lambda: any(not d.ok for d in standins.telegram.webhook_deliveries))
    async with serving(standins, standins.webhook_settings()):
        await petr.reply("email")
        await eventually(lambda: salebot_has(standins, MARIA, "187654323"))
    assert len(petr.texts()) == 1

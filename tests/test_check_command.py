"""``python -m bot check``, through the real command-line entry point (run in a thread, so the
stand-ins keep answering on the test's event loop), passing and failing for the right reasons."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.settings import Settings
from services.storage.database import Database
from tests.conftest import StandIns
from tests.running import SECRETS, process_env


class Check:
    def __init__(
        self,
        standins: StandIns,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        self.standins = standins
        self.monkeypatch = monkeypatch
        self.capsys = capsys

    async def __call__(self, **settings: str) -> tuple[int, dict[str, str]]:
        """Exit code, and each check's line by name."""
        env = process_env(self.standins, **settings)
        for name in Settings.model_fields:
            self.monkeypatch.delenv(name.upper(), raising=False)
        for name, value in env.items():
            if name.lower() in Settings.model_fields:
                self.monkeypatch.setenv(name, value)
        code = await asyncio.to_thread(main, ["check"])
        out, err = self.capsys.readouterr()
        for secret in SECRETS:
            assert secret not in out + err
        lines = {line.split()[1]: line for line in out.splitlines()}
        return code, lines


@pytest.fixture
def check(
    standins: StandIns,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> Check:
    monkeypatch.chdir(tmp_path)  # no .env here
    return Check(standins, monkeypatch, capsys)


async def test_everything_reachable_passes(check: Check, standins: StandIns) -> None:
    code, lines = await check()
    assert code == 0
    assert list(lines) == ["settings", "telegram", "getcourse", "salebot"]
    assert all(line.startswith("ok ") for line in lines.values())
    assert "@school_support_bot" in lines["telegram"]
    assert "1 of 60 requests spent" in lines["getcourse"]
    assert "@school_funnel_bot" in lines["salebot"]
    # The GetCourse key was proven with one groups request, paid for in the ledger.
    assert [r.endpoint for r in standins.getcourse.requests] == ["groups"]
    database = await Database.open(standins.database_path)
    try:
        rows = await database.fetchall("SELECT kind FROM getcourse_export_requests")
    finally:
        await database.close()
    assert [row["kind"] for row in rows] == ["groups"]


def _wrong_token(standins: StandIns) -> dict[str, str]:
    return {"BOT_TOKEN": "123456789:not-the-right-token"}


def _wrong_getcourse_key(standins: StandIns) -> dict[str, str]:
    return {"GETCOURSE_API_KEY": "not-the-getcourse-key"}


def _getcourse_down(standins: StandIns) -> dict[str, str]:
    return {"GETCOURSE_BASE_URL": "http://127.0.0.1:9"}


def _salebot_key_revoked(standins: StandIns) -> dict[str, str]:
    standins.salebot.reject_key()
    return {}


def _funnel_bot_not_connected(standins: StandIns) -> dict[str, str]:
    return {"SALEBOT_BOT_USERNAME": "some_other_bot"}


@pytest.mark.parametrize(
    ("setup", "failing", "reason"),
    [
        (_wrong_token, "telegram", "Telegram rejected BOT_TOKEN (401 Unauthorized)"),
        (_wrong_getcourse_key, "getcourse", "GetCourse rejected the API key (901)"),
        (_getcourse_down, "getcourse", "http://127.0.0.1:9: groups: ConnectError"),
        (_salebot_key_revoked, "salebot", "connected_channels: HTTP 401"),
        (
            _funnel_bot_not_connected,
            "salebot",
            "@some_other_bot (SALEBOT_BOT_USERNAME) is not among the project's Telegram "
            "channels (found: school_funnel_bot)",
        ),
    ],
    ids=["token", "getcourse-key", "getcourse-down", "salebot-key", "funnel-bot"],
)
async def test_each_failure_is_reported_on_its_line(
    check: Check,
    standins: StandIns,
    setup: Callable[[StandIns], dict[str, str]],
    failing: str,
    reason: str,
) -> None:
    code, lines = await check(**setup(standins))
    assert code == 1
    assert lines[failing].startswith("FAIL ")
    assert reason in lines[failing]
    others = set(lines) - {failing}
    assert all(lines[name].startswith("ok ") for name in others), lines


async def test_bad_settings_stop_before_any_call(check: Check, standins: StandIns) -> None:
    code, lines = await check(SALEBOT_BOT_USERNAME="@@")
    assert code == 2
    assert lines == {
        "settings": "FAIL  settings   Configuration error: SALEBOT_BOT_USERNAME: must be the "
        "Telegram bot username, such as school_funnel_bot"
    }
    assert standins.telegram.calls == []
    assert standins.getcourse.requests == []


async def test_funnel_bot_must_not_be_this_bot(check: Check, standins: StandIns) -> None:
    # The Telegram stand-in's bot is @school_support_bot; Salebot's channel list is made to
    # hold it too, so only the "same bot" rule can fail the line.
    standins.salebot.telegram_bots.append("school_support_bot")
    code, lines = await check(SALEBOT_BOT_USERNAME="School_Support_Bot")
    assert code == 1
    assert lines["salebot"].startswith("FAIL ")
    assert "SALEBOT_BOT_USERNAME is this bot itself (@School_Support_Bot)" in lines["salebot"]
    assert all(lines[name].startswith("ok ") for name in ("settings", "telegram", "getcourse"))


async def test_unusable_database_path_is_one_failed_line(
    check: Check, standins: StandIns, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the database folder should be")
    code, lines = await check(DATABASE_PATH=str(blocker / "bot.sqlite3"))
    assert code == 1
    assert list(lines) == ["database"]
    assert lines["database"].startswith(f"FAIL  database   DATABASE_PATH {blocker}/bot.sqlite3: ")
    assert standins.telegram.calls == []


async def test_locked_database_is_one_failed_line(
    check: Check, standins: StandIns, tmp_path: Path
) -> None:
    path = tmp_path / "locked.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("CREATE TABLE backup_in_progress (x)")
        holder.execute("BEGIN EXCLUSIVE")  # a backup or an sqlite3 shell holding the file
        code, lines = await check(DATABASE_PATH=str(path))
    finally:
        holder.close()
    assert code == 1
    assert lines == {
        "database": f"FAIL  database   DATABASE_PATH {path}: the database is locked by another "
        "program (a backup, an sqlite3 shell?)"
    }

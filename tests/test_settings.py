"""Settings: the configuration contract, and one clear line for every bad value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.settings import Settings, SettingsError, load_settings, split_host_port

VALID: dict[str, Any] = {
    "bot_token": "123456:ABCdef_ghi-JKL",
    "operator_ids": "111, 222",
    "getcourse_account": "myschool",
    "getcourse_api_key": "gc-secret",
    "salebot_api_key": "sb-secret",
    "salebot_bot_username": "@school_funnel_bot",
}


def settings(**changes: Any) -> Settings:
    values = {**VALID, **changes}
    return load_settings(_env_file=None, **{k: v for k, v in values.items() if v is not None})


def test_defaults_and_normalisation() -> None:
    loaded = settings()
    assert loaded.operator_ids == frozenset({111, 222})
    assert loaded.salebot_bot_username == "school_funnel_bot"
    assert loaded.getcourse_url == "https://myschool.getcourse.ru"
    assert loaded.getcourse_export_budget == 60
    assert loaded.mode == "polling"
    assert loaded.bot_language == "ru"
    assert loaded.database_path == Path("data/bot.sqlite3")
    assert loaded.salebot_base_url == "https://chatter.salebot.pro"


def test_base_url_wins_over_account() -> None:
    loaded = settings(getcourse_base_url="https://school.example.com/ ")
    assert loaded.getcourse_url == "https://school.example.com"


def test_reads_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in VALID.items():
        monkeypatch.setenv(name.upper(), value)
    monkeypatch.setenv("GETCOURSE_EXPORT_BUDGET", "40")
    monkeypatch.setenv("OPERATOR_CHAT_ID", "")  # empty counts as unset, as in a copied .env
    loaded = load_settings(_env_file=None)
    assert loaded.getcourse_export_budget == 40
    assert loaded.operator_chat_id is None


def test_system_locale_variable_is_not_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    # LANGUAGE is gettext's locale list on many Linux desktops ("en_US:en"); it must not matter.
    monkeypatch.setenv("LANGUAGE", "en_US:en")
    assert settings().bot_language == "ru"
    monkeypatch.setenv("BOT_LANGUAGE", "en")
    assert settings().bot_language == "en"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"bot_token": None}, "Configuration error: BOT_TOKEN is required but not set"),
        ({"bot_token": "not-a-token"}, "BOT_TOKEN: does not look like a bot token"),
        ({"operator_ids": "12, abc"}, "OPERATOR_IDS: must be Telegram user IDs"),
        ({"operator_ids": " "}, "OPERATOR_IDS: needs at least one"),
        ({"getcourse_api_key": None}, "GETCOURSE_API_KEY is required but not set"),
        ({"getcourse_account": None}, "GETCOURSE_ACCOUNT or GETCOURSE_BASE_URL must be set"),
        ({"getcourse_export_budget": 101}, "GETCOURSE_EXPORT_BUDGET: "),
        ({"salebot_base_url": "http://salebot.example.com"}, "SALEBOT_BASE_URL: must use https"),
        ({"telegram_api_url": "ftp://x"}, "TELEGRAM_API_URL: must be a full URL"),
        ({"salebot_bot_username": "no spaces allowed"}, "SALEBOT_BOT_USERNAME: "),
        ({"mode": "webhook"}, "WEBHOOK_URL is required when MODE=webhook"),
        (
            {
                "mode": "webhook",
                "webhook_url": "https://bot.example.com/tg",
                "webhook_secret": "a b",
            },
            "WEBHOOK_SECRET is required when MODE=webhook",
        ),
        (
            {
                "mode": "webhook",
                "webhook_url": "https://bot.example.com:8080/tg",
                "webhook_secret": "s3cret-s3cret-s3cret",
            },
            "WEBHOOK_URL: Telegram posts webhooks only to ports 443, 80, 88 or 8443, not 8080",
        ),
        ({"bot_language": "de"}, "BOT_LANGUAGE: "),
        ({"webhook_listen": "8080"}, "WEBHOOK_LISTEN: must be host:port"),
        ({"health_listen": "localhost:http"}, "HEALTH_LISTEN: must be host:port"),
        ({"shutdown_timeout": 0}, "SHUTDOWN_TIMEOUT: "),
        ({"webhook_drop_pending_updates": "sometimes"}, "WEBHOOK_DROP_PENDING_UPDATES: "),
    ],
)
def test_bad_setting_names_itself_in_one_line(changes: dict[str, Any], expected: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings(**changes)
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message
    assert "gc-secret" not in message
    assert "sb-secret" not in message


def test_plain_http_allowed_only_for_loopback() -> None:
    loaded = settings(
        telegram_api_url="http://127.0.0.1:8081",
        salebot_base_url="http://localhost:9000",
        getcourse_base_url="http://[::1]:9001",
    )
    assert loaded.telegram_api_url == "http://127.0.0.1:8081"
    with pytest.raises(SettingsError, match="GETCOURSE_BASE_URL"):
        settings(getcourse_base_url="http://10.0.0.5")


def test_secrets_are_not_in_repr() -> None:
    loaded = settings()
    assert "gc-secret" not in repr(loaded)
    assert set(loaded.secrets()) >= {"gc-secret", "sb-secret", "123456:ABCdef_ghi-JKL"}


def test_start_up_stops_with_one_line_naming_the_setting(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "BOT_TOKEN": "123:abc", "OPERATOR_IDS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,  # no .env here
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Configuration error: GETCOURSE_API_KEY is required but not set"
    ]


def test_listen_addresses_split_into_host_and_port() -> None:
    assert split_host_port(" 0.0.0.0:8080 ") == ("0.0.0.0", 8080)
    assert split_host_port("[::]:8443") == ("::", 8443)

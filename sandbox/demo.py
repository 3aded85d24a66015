"""The demo school the stand-ins play: the credentials and names they accept, and the bot
settings carrying them. Apart from ``sandbox/world.py`` (which starts the stand-ins) so that a
process with no stand-in to talk to (``bench/memory.py``) need not import them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# URL-safe and long, so a leak would show verbatim in a test's log.
TOKEN = "123456789:SANDBOX-token_for-stand-ins"
GETCOURSE_KEY = "gc-sandbox-key-1234567890"
SALEBOT_KEY = "sb-sandbox-key-0987654321"
# What the Telegram stand-in sends along with each update it posts to the bot's webhook.
WEBHOOK_SECRET = "hook-secret_0123456789"
# The school's Salebot-connected Telegram bot (SALEBOT_BOT_USERNAME), which Salebot knows.
FUNNEL_BOT = "school_funnel_bot"
OPERATOR_ID = 900000001
# The school's name and address on the code letters it sends.
SCHOOL = "Sandbox School"
SCHOOL_ADDRESS = "noreply@school.example"


def connection_settings(
    *, telegram_api_url: str, getcourse_base_url: str, salebot_base_url: str, database_path: Path
) -> dict[str, Any]:
    """The settings (keyword arguments of ``Settings``) pointing the bot at stand-ins serving
    these URLs with the demo credentials."""
    return {
        "bot_token": TOKEN,
        "telegram_api_url": telegram_api_url,
        "operator_ids": str(OPERATOR_ID),
        "getcourse_base_url": getcourse_base_url,
        "getcourse_api_key": GETCOURSE_KEY,
        "salebot_api_key": SALEBOT_KEY,
        "salebot_base_url": salebot_base_url,
        "salebot_bot_username": FUNNEL_BOT,
        "database_path": database_path,
    }

"""The stand-in world: the Telegram, GetCourse and Salebot stand-ins (and, when asked, the mail
server) on loopback playing the demo school of ``sandbox/demo.py``, and the bot's settings
pointing at them. ``python -m bot sandbox``, the tests and the benchmarks all start it here:

    async with stand_in_world() as world:
        async with App.running(world.settings(bot_language="en")) as app:
            ...

Every server listens on 127.0.0.1 with a port the OS picks, and all are stopped on the way out
(the database folder too, when the world made it)."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.settings import Settings, load_settings
from sandbox.demo import (
    FUNNEL_BOT,
    GETCOURSE_KEY,
    SALEBOT_KEY,
    SCHOOL,
    SCHOOL_ADDRESS,
    TOKEN,
    WEBHOOK_SECRET,
    connection_settings,
)
from sandbox.getcourse import GetCourseStandIn
from sandbox.mail import MailStandIn
from sandbox.salebot import SalebotStandIn
from sandbox.server import LoopbackServer
from sandbox.telegram import TelegramStandIn


def free_port() -> int:
    """A loopback port free at this moment, for a listener the bot opens itself."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def mail_settings(mail: MailStandIn) -> dict[str, Any]:
    """Settings that send the bot's letters to ``mail``, signed by the world's school."""
    return {
        "smtp_host": mail.host,
        "smtp_port": mail.port,
        "smtp_security": "none",  # accepted for loopback only
        "smtp_from": f"{SCHOOL} <{SCHOOL_ADDRESS}>",
        "school_name": SCHOOL,
    }


@dataclass
class StandInWorld:
    telegram: TelegramStandIn
    getcourse: GetCourseStandIn
    salebot: SalebotStandIn
    mail: MailStandIn | None
    database_path: Path
    # The caller's settings, under every call's overrides.
    defaults: dict[str, Any] = field(default_factory=dict)

    def setting_values(self) -> dict[str, Any]:
        """The settings pointing the bot at this world, as keyword arguments of ``Settings``."""
        values = connection_settings(
            telegram_api_url=self.telegram.base_url,
            getcourse_base_url=self.getcourse.base_url,
            salebot_base_url=self.salebot.base_url,
            database_path=self.database_path,
        )
        # Never the fixed default port: worlds run side by side, and next to a real bot.
        values["health_listen"] = f"127.0.0.1:{free_port()}"
        if self.mail is not None:
            values |= mail_settings(self.mail)
        return values | self.defaults

    def settings(self, **overrides: Any) -> Settings:
        """The bot's settings for this world; ``overrides`` win over the caller's defaults."""
        return load_settings(_env_file=None, **(self.setting_values() | overrides))

    def webhook_settings(self, **overrides: Any) -> Settings:
        """Settings for ``MODE=webhook``: the bot's public listener on a free loopback port,
        where the Telegram stand-in posts the updates once the bot has set its webhook."""
        port = free_port()
        values = {
            "mode": "webhook",
            "webhook_url": f"http://127.0.0.1:{port}/telegram/updates",
            "webhook_secret": WEBHOOK_SECRET,
            "http_listen": f"127.0.0.1:{port}",
        }
        return self.settings(**(values | overrides))

    def env(self, **overrides: str) -> dict[str, str]:
        """The environment of a ``python -m bot`` process against this world: its settings as
        variables (``overrides`` by variable name), and nothing inherited that could configure
        the bot."""
        names = {name.upper() for name in Settings.model_fields}
        inherited = {name: value for name, value in os.environ.items() if name.upper() not in names}
        values = {name.upper(): _env_value(value) for name, value in self.setting_values().items()}
        return inherited | values | overrides


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


@asynccontextmanager
async def stand_in_world(
    folder: Path | None = None,
    *,
    demo_data: bool = True,
    export_latency: float = 0.0,
    not_ready_polls: int = 0,
    mail: bool = False,
    proof: bool = False,
    settings: Mapping[str, Any] | None = None,
) -> AsyncIterator[StandInWorld]:
    """The stand-ins started, stopped on the way out.

    - ``folder``: where the bot's database goes (a temporary folder, removed at the end, if not
      given).
    - ``demo_data``: GetCourse and Salebot hold the demo school of ``sandbox/data``; without it
      both start empty (the caller fills them).
    - ``export_latency``: seconds GetCourse takes to build an export; ``not_ready_polls``: the
      polls of each export answered "not ready" (909) first. Other quirks are attributes of the
      stand-ins, set on ``world.getcourse`` and ``world.salebot``.
    - ``mail``: a mail server on loopback, and settings sending the bot's letters to it.
    - ``proof``: people prove their email (the bot's default ``OWNERSHIP_PROOF``); off unless
      asked, so a found email is linked at once.
    - ``settings``: the caller's settings for every ``world.settings()`` (tunings, limits)."""
    quirks: dict[str, Any] = {"export_latency": export_latency, "not_ready_polls": not_ready_polls}
    if demo_data:
        getcourse = GetCourseStandIn.from_seed(api_key=GETCOURSE_KEY, **quirks)
        salebot = SalebotStandIn.from_seed(api_key=SALEBOT_KEY)
    else:
        getcourse = GetCourseStandIn(api_key=GETCOURSE_KEY, **quirks)
        salebot = SalebotStandIn(api_key=SALEBOT_KEY, telegram_bots=[FUNNEL_BOT])
    defaults = {} if proof else {"ownership_proof": "off"}
    async with AsyncExitStack() as stack:
        if folder is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="stand-ins-")))
        telegram = TelegramStandIn(token=TOKEN)
        world = StandInWorld(
            telegram=telegram,
            getcourse=getcourse,
            salebot=salebot,
            mail=MailStandIn() if mail else None,
            database_path=folder / "bot.sqlite3",
            defaults=defaults | dict(settings or {}),
        )
        servers: list[LoopbackServer | MailStandIn] = [telegram, getcourse, salebot]
        if world.mail is not None:
            servers.append(world.mail)
        for server in servers:
            await server.start()
            stack.push_async_callback(server.stop)
        yield world

"""What every context's services are built from: the settings, the database, one HTTP client per
external system, and the runtime's call tracker and operator notices."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from bot import __version__
from bot.factories.runtime import operator_notifier
from bot.settings import Settings
from services.health import CallTracker
from services.notifications import GroupingNotifier
from services.storage.database import Database

USER_AGENT = f"gc-salebot-link-bot/{__version__}"


@dataclass(frozen=True)
class Shared:
    settings: Settings
    database: Database
    getcourse_http: httpx.AsyncClient
    salebot_http: httpx.AsyncClient
    calls: CallTracker
    notifier: GroupingNotifier


async def open_shared(settings: Settings) -> Shared:
    # The database first: it is what may refuse to open (a StartupError, before any client).
    database = await Database.open(settings.database_path)
    getcourse_http = http_client(settings.getcourse_url, httpx.Timeout(30.0, connect=10.0))
    salebot_http = http_client(settings.salebot_base_url, httpx.Timeout(10.0))
    notifier = operator_notifier(settings)
    return Shared(settings, database, getcourse_http, salebot_http, CallTracker(), notifier)


def http_client(base_url: str, timeout: httpx.Timeout) -> httpx.AsyncClient:
    # Redirects are never followed: one would carry the key elsewhere and drop POST bodies.
    return httpx.AsyncClient(
        base_url=base_url,
        follow_redirects=False,
        timeout=timeout,
        headers={"User-Agent": USER_AGENT},
    )

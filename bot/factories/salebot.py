"""The Salebot context: the API client, and the outbox that delivers its writes (and, as lanes,
the bridge's)."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from bot.factories.shared import http_client
from bot.settings import Settings
from services.backoff import RetryPolicy
from services.health import CallTracker
from services.notifications import Notifier
from services.outbox import DeliveryLane, DeliverySchedule, OutboxWorker
from services.salebot import SalebotClient
from services.storage.database import Database


def salebot_http(settings: Settings) -> httpx.AsyncClient:
    return http_client(settings.salebot_base_url, httpx.Timeout(10.0))


def salebot_client(
    settings: Settings, http: httpx.AsyncClient, calls: CallTracker
) -> SalebotClient:
    key = settings.salebot_api_key.get_secret_value()
    return SalebotClient(http, key, settings.salebot_bot_username, calls=calls)


def retry_policy(settings: Settings) -> RetryPolicy:
    """How a failed Salebot call is tried again (the outbox's and the bridge's)."""
    return RetryPolicy(settings.salebot_retry_first_delay, settings.salebot_retry_max_delay)


def outbox_worker(
    settings: Settings,
    database: Database,
    salebot: SalebotClient,
    notifier: Notifier,
    lanes: Sequence[DeliveryLane],
) -> OutboxWorker:
    schedule = DeliverySchedule(
        retry=retry_policy(settings),
        missing_client=RetryPolicy(
            settings.salebot_retry_first_delay, settings.salebot_missing_client_max_delay
        ),
        missing_client_for=settings.salebot_missing_client_days * 24 * 3600,
    )
    return OutboxWorker(database, salebot, schedule, notifier=notifier, lanes=lanes)

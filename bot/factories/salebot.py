"""The Salebot context: the API client, and the outbox that delivers its writes (and, as lanes,
the bridge's)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.factories.shared import Shared
from bot.settings import Settings
from services.backoff import RetryPolicy
from services.salebot.client import SalebotClient
from services.salebot.outbox import DeliveryLane, DeliverySchedule, OutboxWorker


def salebot_client(shared: Shared) -> SalebotClient:
    settings = shared.settings
    key = settings.salebot_api_key.get_secret_value()
    return SalebotClient(
        shared.salebot_http, key, settings.salebot_bot_username, calls=shared.calls
    )


def retry_policy(settings: Settings) -> RetryPolicy:
    """How a failed Salebot call is tried again (the outbox's and the bridge's)."""
    return RetryPolicy(settings.salebot_retry_first_delay, settings.salebot_retry_max_delay)


def outbox_worker(
    shared: Shared, salebot: SalebotClient, lanes: Sequence[DeliveryLane]
) -> OutboxWorker:
    settings = shared.settings
    schedule = DeliverySchedule(
        retry=retry_policy(settings),
        missing_client=RetryPolicy(
            settings.salebot_retry_first_delay, settings.salebot_missing_client_max_delay
        ),
        missing_client_for=settings.salebot_missing_client_days * 24 * 3600,
    )
    return OutboxWorker(shared.database, salebot, schedule, notifier=shared.notifier, lanes=lanes)

"""Pushing updates to the bot's webhook while one is set: in order, with the secret-token
header, each one again after a pause until the bot answers 2xx, as Telegram does."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp

from sandbox.telegram.changes import Changes
from sandbox.telegram.records import WebhookDelivery, unix_now
from sandbox.telegram.updates import UpdateQueue

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class WebhookPusher:
    def __init__(self, updates: UpdateQueue, changes: Changes) -> None:
        self._updates = updates
        self._changes = changes
        self.webhook: dict[str, Any] | None = None  # as setWebhook left it
        self.deliveries: list[WebhookDelivery] = []
        # Telegram backs off for longer between attempts; tests have no time for that.
        self.retry_delay = 0.05
        self.timeout = 10.0
        self.last_error: tuple[int, str] | None = None  # (date, message), for getWebhookInfo
        self._delivery: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None

    def ensure_running(self) -> None:
        """Start delivering when a webhook is set and no delivery loop runs."""
        if self.webhook is not None and (self._delivery is None or self._delivery.done()):
            self._delivery = asyncio.get_running_loop().create_task(self._deliver())

    async def close(self) -> None:
        if self._delivery is not None:
            self._delivery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._delivery
            self._delivery = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _deliver(self) -> None:
        """While a webhook is set, POST the pending updates to it one at a time, in order.

        Like Telegram, an update leaves the queue only when the bot answers 2xx; otherwise it
        is sent again after a pause, and the ones behind it wait."""
        while self.webhook is not None and not self._updates.closing:
            pending, arrived = self._updates.deliverable()
            if not pending:
                await arrived.wait()
                continue
            update = pending[0]
            delivery = await self.post(update, self.webhook["secret_token"])
            self.deliveries.append(delivery)
            if delivery.ok:
                self._updates.remove(update)
            else:
                self.last_error = (unix_now(), delivery.error or "")
                await asyncio.sleep(self.retry_delay)
            await self._changes.notify()

    async def post(self, update: dict[str, Any], secret: str | None) -> WebhookDelivery:
        """POST one update to the set webhook with ``secret`` in the header (None: no header)."""
        assert self.webhook is not None
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        headers = {} if secret is None else {SECRET_HEADER: secret}
        update_id = int(update["update_id"])
        try:
            async with self._http.post(self.webhook["url"], json=update, headers=headers) as answer:
                await answer.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            return WebhookDelivery(update_id, None, f"Connection failed: {type(error).__name__}")
        if 200 <= answer.status < 300:
            return WebhookDelivery(update_id, answer.status)
        message = f"Wrong response from the webhook: {answer.status} {answer.reason}"
        return WebhookDelivery(update_id, answer.status, message)

"""The Telegram stand-in's webhook delivery, against a plain aiohttp receiver on loopback."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram import Bot
from aiohttp import web

from sandbox.server import LoopbackServer
from sandbox.telegram import SECRET_HEADER, TelegramStandIn
from tests.conftest import eventually

USER = 555000222


class Receiver(LoopbackServer):
    """Records what is posted to ``/hook`` and answers the queued statuses (then 200)."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[tuple[str | None, dict[str, Any]]] = []
        self.statuses: deque[int] = deque()

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        return app

    async def _hook(self, request: web.Request) -> web.Response:
        self.received.append((request.headers.get(SECRET_HEADER), await request.json()))
        return web.json_response({}, status=self.statuses.popleft() if self.statuses else 200)

    def texts(self) -> list[str]:
        return [update["message"]["text"] for _, update in self.received]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as server:
        yield server


async def test_updates_are_posted_in_order_with_the_secret(
    tg: TelegramStandIn, receiver: Receiver, bot: Bot
) -> None:
    tg.send_message(USER, "queued before the webhook")
    await bot.set_webhook(f"{receiver.base_url}/hook", secret_token="s3cret")
    tg.send_message(USER, "second")
    tg.send_message(USER, "third")

    await eventually(lambda: len(receiver.received) == 3)
    assert receiver.texts() == ["queued before the webhook", "second", "third"]
    assert {secret for secret, _ in receiver.received} == {"s3cret"}
    assert (await bot.get_webhook_info()).pending_update_count == 0


async def test_a_failed_delivery_is_retried_and_holds_back_the_rest(
    tg: TelegramStandIn, receiver: Receiver, bot: Bot
) -> None:
    receiver.statuses.extend([500, 401])
    await bot.set_webhook(f"{receiver.base_url}/hook", secret_token="s3cret")
    tg.send_message(USER, "first")
    tg.send_message(USER, "second")

    await eventually(lambda: receiver.texts()[-2:] == ["first", "second"])
    assert receiver.texts() == ["first", "first", "first", "second"]
    assert [d.status for d in tg.webhook_deliveries] == [500, 401, 200, 200]
    info = await bot.get_webhook_info()
    assert info.last_error_message == "Wrong response from the webhook: 401 Unauthorized"


async def test_unreachable_webhook_keeps_updates_until_deleted(
    tg: TelegramStandIn, bot: Bot
) -> None:
    await bot.set_webhook("http://127.0.0.1:9/hook")  # nothing listens there
    tg.send_message(USER, "kept")
    await eventually(lambda: len(tg.webhook_deliveries) >= 2)
    assert not any(d.ok for d in tg.webhook_deliveries)
    info = await bot.get_webhook_info()
    assert (info.last_error_message or "").startswith("Connection failed")

    await bot.delete_webhook()
    updates = await bot.get_updates(timeout=0)
    assert [u.message.text for u in updates if u.message] == ["kept"]


async def test_post_to_webhook_uses_the_given_secret_only(
    tg: TelegramStandIn, receiver: Receiver, bot: Bot
) -> None:
    await bot.set_webhook(f"{receiver.base_url}/hook", secret_token="s3cret")
    receiver.statuses.extend([401, 401])
    message = {"message_id": 1, "date": 0, "chat": {"id": USER, "type": "private"}, "text": "x"}

    assert await tg.post_to_webhook({"message": message}, secret="wrong") == 401
    assert await tg.post_to_webhook({"message": message}, secret=None) == 401
    assert [secret for secret, _ in receiver.received] == ["wrong", None]
    assert tg.webhook_deliveries == []  # outside the queue: not a delivery

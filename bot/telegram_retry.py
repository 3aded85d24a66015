"""Telegram's flood control: every outgoing call that gets 429 waits ``retry_after`` seconds
and is sent again, a bounded number of times."""

from __future__ import annotations

import asyncio
import logging

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType

log = logging.getLogger(__name__)


class RetryAfterMiddleware(BaseRequestMiddleware):
    def __init__(self, attempts: int = 3, longest_wait: float = 60.0) -> None:
        self._attempts = attempts
        self._longest_wait = longest_wait

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        attempt = 1
        while True:
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as error:
                # A wait longer than a minute is no answer a person is still waiting for.
                if attempt >= self._attempts or error.retry_after > self._longest_wait:
                    raise
                log.warning(
                    "telegram flood control on %s: retrying in %ss (attempt %d)",
                    method.__api_method__,
                    error.retry_after,
                    attempt,
                )
                await asyncio.sleep(error.retry_after)
                attempt += 1

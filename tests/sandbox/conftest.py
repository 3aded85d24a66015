"""The Telegram stand-in on loopback and an aiogram Bot talking to it, for the stand-in's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from sandbox.telegram import TelegramStandIn

TOKEN = "123456789:AAH-test-token_for_the_stand_in"


@pytest.fixture
async def tg() -> AsyncIterator[TelegramStandIn]:
    async with TelegramStandIn(token=TOKEN) as stand_in:
        yield stand_in


def make_bot(tg: TelegramStandIn, token: str = TOKEN) -> Bot:
    return Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url)))


@pytest.fixture
async def bot(tg: TelegramStandIn) -> AsyncIterator[Bot]:
    bot = make_bot(tg)
    yield bot
    await bot.session.close()

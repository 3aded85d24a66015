"""Bounded work per update: each chat's turn is forgotten once it is over, and no more than
UPDATES_AT_ONCE updates are handled at a time, in both run modes."""

from __future__ import annotations

import asyncio

import pytest
from aiogram.fsm.storage.base import StorageKey

from bot.isolation import PerChatIsolation
from tests.conftest import Person, StandIns, eventually
from tests.running import serving

IVAN = 100000001  # in the seed data of both stand-ins
MARIA = 100000002


def key(chat_id: int) -> StorageKey:
    return StorageKey(bot_id=1, chat_id=chat_id, user_id=chat_id)


async def test_one_chat_waits_its_turn_and_nothing_is_kept_after() -> None:
    isolation = PerChatIsolation()
    order: list[str] = []
    first_in = asyncio.Event()
    release = asyncio.Event()

    async def handle(chat_id: int, name: str, hold: bool) -> None:
        async with isolation.lock(key(chat_id)):
            order.append(f"{name} in")
            if hold:
                first_in.set()
                await release.wait()
            order.append(f"{name} out")

    first = asyncio.create_task(handle(1, "a", hold=True))
    await first_in.wait()
    same_chat = asyncio.create_task(handle(1, "b", hold=False))
    await handle(2, "c", hold=False)  # another chat is not held up
    assert order == ["a in", "c in", "c out"]
    release.set()
    await asyncio.gather(first, same_chat)
    assert order == ["a in", "c in", "c out", "a out", "b in", "b out"]
    assert isolation.chats_in_progress == 0


async def test_closing_while_a_turn_is_held_is_harmless() -> None:
    isolation = PerChatIsolation()
    async with isolation.lock(key(1)):
        await isolation.close()  # aiogram closes the isolation on shutdown
        async with isolation.lock(key(2)):
            pass
    assert isolation.chats_in_progress == 0


async def test_many_distinct_senders_leave_no_locks(standins: StandIns) -> None:
    async with serving(standins, standins.settings()) as app:
        people = [Person(standins.telegram, 200000000 + n) for n in range(30)]
        for person in people:
            person.says("/start")
        for person in people:
            await person.reply("email")
        isolation = app.dispatcher.fsm.events_isolation
        assert isinstance(isolation, PerChatIsolation)
        await eventually(lambda: isolation.chats_in_progress == 0)


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_no_more_updates_are_handled_at_once_than_allowed(
    standins: StandIns, mode: str
) -> None:
    standins.getcourse.not_ready_polls = 10_000  # Ivan's lookup holds his update's slot
    make_settings = standins.settings if mode == "polling" else standins.webhook_settings
    settings = make_settings(
        updates_at_once=1, getcourse_poll_max_interval=0.5, getcourse_lookup_timeout=60
    )
    async with serving(standins, settings):
        ivan, maria = Person(standins.telegram, IVAN), Person(standins.telegram, MARIA)
        ivan.says("ivan.petrov@example.com")
        await ivan.reply("Проверяю")
        await eventually(lambda: standins.getcourse.exports_started() == 1)
        delivered = len(standins.telegram.webhook_deliveries)
        maria.says("/start")
        if mode == "webhook":
            # Telegram got its 200 for Maria's update; her answer waits for Ivan's to finish.
            await eventually(lambda: len(standins.telegram.webhook_deliveries) > delivered)
            assert standins.telegram.webhook_deliveries[-1].ok
        standins.getcourse.complete_exports()
        await ivan.reply("Готово")
        await maria.reply("email")
        # The only slot was Ivan's: Maria's update waited (polling: in Telegram) until his was done.
        assert answer_order(standins) == [IVAN, MARIA]


def answer_order(standins: StandIns) -> list[int]:
    """Who got an answer after Ivan's "checking…", in the order the bot sent them."""
    sent = [
        (int(call.params["chat_id"]), str(call.params.get("text", "")))
        for call in standins.telegram.calls
        if call.method == "sendMessage"
    ]
    checking = next(i for i, (chat, text) in enumerate(sent) if chat == IVAN and "Проверяю" in text)
    return [chat for chat, _ in sent[checking + 1 :]]

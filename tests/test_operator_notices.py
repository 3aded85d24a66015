"""Operator notices: grouped and rate limited so an outage is a few messages, rendered to fit
one Telegram message, and sent to the operator chat only."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from handlers.notices import render_notices
from handlers.texts import LANGUAGES, Texts
from sandbox.telegram import SentMessage
from services.notifications import (
    MAX_EXAMPLES,
    GroupingNotifier,
    NoticeGroup,
    OperatorEvent,
    OperatorNotice,
)
from services.salebot.outbox import DeliveryCause
from tests.conftest import OPERATOR_ID, Person, StandIns, eventually, polling_bot
from tests.operator_console import IVAN, OPERATOR_CHAT, plain

NOTICE_TITLE = plain(Texts.load("ru").render("notice_title"))


@dataclass
class Deliveries:
    """The ``deliver`` callback: records batches, or fails the next ``failures`` calls."""

    batches: list[tuple[float, list[NoticeGroup]]] = field(default_factory=list)
    failures: int = 0

    async def __call__(self, batch: list[NoticeGroup]) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("Telegram is unreachable")
        self.batches.append((time.monotonic(), batch))

    def counts(self) -> dict[OperatorEvent, int]:
        totals: dict[OperatorEvent, int] = {}
        for _, batch in self.batches:
            for group in batch:
                totals[group.event] = totals.get(group.event, 0) + group.count
        return totals


@dataclass
class Running:
    notifier: GroupingNotifier
    deliveries: Deliveries
    task: asyncio.Task[None]

    async def stop(self) -> None:
        self.notifier.stop()
        await self.task


async def start(notifier: GroupingNotifier, deliveries: Deliveries) -> Running:
    return Running(notifier, deliveries, asyncio.create_task(notifier.run(deliveries)))


@pytest.fixture
async def stoppable() -> AsyncIterator[list[Running]]:
    started: list[Running] = []
    yield started
    for running in started:
        if not running.task.done():
            await running.stop()


def failed(telegram_id: int) -> OperatorNotice:
    return OperatorNotice(
        OperatorEvent.DELIVERY_FAILED,
        {"telegram_id": str(telegram_id), "cause": "rejected", "error": "HTTP 400 bad variable"},
    )


KEY_REJECTED = OperatorNotice(
    OperatorEvent.SALEBOT_KEY_REJECTED, {"cause": "rejected", "error": "HTTP 401 Unauthorized"}
)


async def test_an_outage_of_a_thousand_notices_is_one_batch_with_counts() -> None:
    deliveries = Deliveries()
    notifier = GroupingNotifier(interval=60, gather=0.01)
    for number in range(1000):
        notifier.notify(failed(number % 10))
        notifier.notify(KEY_REJECTED)
    running = await start(notifier, deliveries)
    await eventually(lambda: deliveries.batches)
    await running.stop()

    [(_, batch)] = deliveries.batches
    delivery_failed, key_rejected = batch
    assert (delivery_failed.event, delivery_failed.count) == (OperatorEvent.DELIVERY_FAILED, 1000)
    assert [times for _, times in delivery_failed.examples] == [100, 100, 100]
    assert delivery_failed.unlisted == 700
    assert key_rejected.count == 1000
    assert key_rejected.examples == [(KEY_REJECTED.details, 1000)]


async def test_notices_after_a_batch_wait_for_the_interval(stoppable: list[Running]) -> None:
    interval = 0.3
    deliveries = Deliveries()
    running = await start(GroupingNotifier(interval=interval, gather=0.01), deliveries)
    stoppable.append(running)

    running.notifier.notify(failed(1))
    await eventually(lambda: len(deliveries.batches) == 1)
    running.notifier.notify(failed(2))
    running.notifier.notify(failed(3))
    await eventually(lambda: len(deliveries.batches) == 2)

    (first_at, _), (second_at, second) = deliveries.batches
    assert second_at - first_at >= interval - 0.01
    [group] = second
    assert group.count == 2  # the two that came meanwhile travel together


async def test_a_batch_that_could_not_be_delivered_goes_with_the_next(
    stoppable: list[Running],
) -> None:
    deliveries = Deliveries(failures=1)
    running = await start(GroupingNotifier(interval=0.05, gather=0.01), deliveries)
    stoppable.append(running)

    running.notifier.notify(failed(1))
    await eventually(lambda: deliveries.failures == 0)
    running.notifier.notify(failed(1))
    running.notifier.notify(KEY_REJECTED)
    await eventually(lambda: deliveries.batches)

    assert deliveries.counts() == {
        OperatorEvent.DELIVERY_FAILED: 2,
        OperatorEvent.SALEBOT_KEY_REJECTED: 1,
    }
    [(_, batch)] = deliveries.batches
    assert batch[0].examples == [(failed(1).details, 2)]


async def test_stopping_delivers_what_is_still_pending() -> None:
    deliveries = Deliveries()
    running = await start(GroupingNotifier(interval=60, gather=60), deliveries)
    running.notifier.notify(KEY_REJECTED)
    await running.stop()
    assert deliveries.counts() == {OperatorEvent.SALEBOT_KEY_REJECTED: 1}


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_batch_of_every_event_fits_one_message_and_is_escaped(language: str) -> None:
    texts = Texts.load(language)
    batch = []
    for event in OperatorEvent:
        group = NoticeGroup(event)
        for number in range(5):
            details = {"telegram_id": str(number), "error": "<html>" + "x" * 500}
            group.add(details, 1 + number, MAX_EXAMPLES)
        batch.append(group)

    message = render_notices(texts, batch)

    assert len(message) <= 4096
    assert "<html>" not in message
    assert "&lt;html&gt;" in message
    for event in OperatorEvent:
        assert texts.render(f"notice_{event}", count=15) in message
    assert texts.render("notice_more", count=9) in message  # 4 + 5 not among the examples


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_delivery_cause_has_words(language: str) -> None:
    texts = Texts.load(language)
    for cause in DeliveryCause:
        assert texts.render(f"cause_{cause}")


# -- over Telegram -------------------------------------------------------------------------------


def notices_in(standins: StandIns, chat_id: int) -> list[SentMessage]:
    return [
        message
        for message in standins.telegram.bot_messages(chat_id)
        if plain(message.text or "").startswith(NOTICE_TITLE)
    ]


async def test_the_operator_chat_hears_that_salebot_rejected_the_key(standins: StandIns) -> None:
    settings = standins.settings(operator_chat_id=OPERATOR_CHAT, operator_notice_interval=0.2)
    async with polling_bot(standins, settings):
        standins.salebot.reject_key(True)
        ivan = Person(standins.telegram, IVAN)
        ivan.says("ivan.petrov@example.com")
        await ivan.reply("Готово")

        await eventually(lambda: notices_in(standins, OPERATOR_CHAT))

        [notice] = notices_in(standins, OPERATOR_CHAT)
        text = plain(notice.text or "")
        assert "🔑 Salebot отклонил ключ API или его права — 1." in text
        assert f"telegram_id={IVAN}" in text
        assert "HTTP 401" in text
        # Students and operators' private chats hear nothing of it.
        assert notices_in(standins, IVAN) == notices_in(standins, OPERATOR_ID) == []


async def test_a_thousand_notices_reach_the_chat_as_one_message(standins: StandIns) -> None:
    settings = standins.settings(operator_chat_id=OPERATOR_CHAT, operator_notice_interval=0.2)
    async with polling_bot(standins, settings) as app:
        for number in range(1000):
            app.services.notifier.notify(failed(number))

        await eventually(lambda: notices_in(standins, OPERATOR_CHAT))

        [notice] = notices_in(standins, OPERATOR_CHAT)
        text = plain(notice.text or "")
        assert "Запись в Salebot не удалась окончательно — 1000." in text
        assert re.search(r"и ещё 997$", text, re.MULTILINE)


async def test_without_an_operator_chat_notices_are_only_logged(standins: StandIns) -> None:
    async with polling_bot(standins) as app:
        app.services.notifier.notify(KEY_REJECTED)
    # Shutting down delivers whatever is pending; with no chat there is nowhere to send it.
    sent = [plain(call.params["text"]) for call in standins.telegram.calls_of("sendMessage")]
    assert not any(text.startswith(NOTICE_TITLE) for text in sent)

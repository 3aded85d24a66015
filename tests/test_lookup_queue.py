"""Lookups waiting for a GetCourse export, over loopback HTTP: told they are queued, answered
later in the same chat, paced by the export budget, kept across a restart, cancellable."""

from __future__ import annotations

from services.linking.lookup_queue import LookupPace
from tests.conftest import OPERATOR_ID, Person, StandIns, polling_bot

IVAN = 100000001
MARIA = 100000002
ANNA = 100000003


def export_starts(standins: StandIns) -> list[dict[str, str]]:
    return [r.params for r in standins.getcourse.requests if r.endpoint == "users" and r.counted]


async def test_an_answer_that_comes_after_the_notice_is_written_later(
    standins: StandIns,
) -> None:
    standins.getcourse.not_ready_polls = 1_000_000  # the export takes "minutes"
    # Polls far enough apart that the export budget outlasts the wait.
    settings = standins.settings(
        getcourse_queued_notice_seconds=0.1, getcourse_poll_max_interval=0.5
    )
    ivan = Person(standins.telegram, IVAN)
    async with polling_bot(standins, settings) as app:
        ivan.says("ivan.petrov@example.com")
        await ivan.reply("Сейчас")  # the handler has let go of the lookup
        standins.getcourse.not_ready_polls = 0
        standins.getcourse.complete_exports()
        await ivan.reply("Готово")
        # The dialog is over, as if the answer had come at once.
        ivan.says("hello")
        await ivan.reply("Вы привязаны")
        assert await app.services.lookups.waiting() == 0
    assert [text.split()[0] for text in ivan.texts()] == [
        "Проверяю",
        "Сейчас",
        "Готово!",
        "Вы",
    ]


async def test_the_pace_holds_nothing_back_while_half_the_budget_is_unspent(
    standins: StandIns,
) -> None:
    settings = standins.settings(getcourse_pace_lookups=True, getcourse_queued_notice_seconds=1.0)
    people = [Person(standins.telegram, IVAN), Person(standins.telegram, MARIA)]
    emails = ["ivan.petrov@example.com", "maria.sidorova@example.com"]
    async with polling_bot(standins, settings):
        for person, email in zip(people, emails, strict=True):
            person.says(email)
            await person.reply("Готово")
    assert export_starts(standins) == [{"email": email} for email in emails]
    assert not any("Сейчас" in text for person in people for text in person.texts())


async def test_lookups_are_paced_and_a_queued_one_survives_a_restart(
    standins: StandIns,
) -> None:
    # A budget of 4, paced from the first request: Ivan's export (a start and a poll) is owed
    # for an hour (30 minutes a request), so the pace holds Maria's.
    settings = standins.settings(
        getcourse_pace_lookups=True,
        getcourse_pace_free_share=0,
        getcourse_queued_notice_seconds=1.0,
        getcourse_export_budget=4,
        getcourse_sync_reserve=0,
    )
    ivan, maria = Person(standins.telegram, IVAN), Person(standins.telegram, MARIA)
    async with polling_bot(standins, settings) as app:
        ivan.says("ivan.petrov@example.com")  # after a quiet spell: exported at once
        await ivan.reply("Готово")
        maria.says("maria.sidorova@example.com")  # Ivan's export still owed: the pace holds it
        await maria.reply("Сейчас")
        assert export_starts(standins) == [{"email": "ivan.petrov@example.com"}]
        operator = Person(standins.telegram, OPERATOR_ID)
        operator.says("/health")
        await operator.reply("Email ждут выгрузки из GetCourse: 1")
    # The pace lives in memory; the queue in the database: a new start answers Maria.
    async with polling_bot(standins, settings) as app:
        await maria.reply("Готово")
        link = await app.services.links.current_link(MARIA)
    assert link is not None
    assert link.email == "maria.sidorova@example.com"
    assert export_starts(standins) == [
        {"email": "ivan.petrov@example.com"},
        {"email": "maria.sidorova@example.com"},
    ]
    assert [text.split()[0] for text in maria.texts()] == ["Проверяю", "Сейчас", "Готово!"]


async def test_cancel_drops_a_queued_lookup(standins: StandIns) -> None:
    settings = standins.settings(
        getcourse_pace_lookups=True,
        getcourse_pace_free_share=0,
        getcourse_queued_notice_seconds=1.0,
        getcourse_export_budget=4,  # Ivan's export is owed: the pace holds Anna's
        getcourse_sync_reserve=0,
    )
    ivan, anna = Person(standins.telegram, IVAN), Person(standins.telegram, ANNA)
    async with polling_bot(standins, settings) as app:
        ivan.says("ivan.petrov@example.com")
        await ivan.reply("Готово")
        anna.says("anna@example.org")
        await anna.reply("Сейчас")
        anna.says("/cancel")
        await anna.reply("остановил")
        assert await app.services.lookups.waiting() == 0
        assert await app.services.links.current_link(ANNA) is None
    assert export_starts(standins) == [{"email": "ivan.petrov@example.com"}]


async def test_a_newer_email_replaces_the_queued_one(standins: StandIns) -> None:
    standins.getcourse.not_ready_polls = 1_000_000
    # Polls far enough apart that the export budget outlasts the wait.
    settings = standins.settings(
        getcourse_queued_notice_seconds=0.1, getcourse_poll_max_interval=0.5
    )
    anna = Person(standins.telegram, ANNA)
    async with polling_bot(standins, settings) as app:
        anna.says("typo@example.org")
        await anna.reply("Сейчас")
        anna.says("anna@example.org")
        await anna.reply("Сейчас")
        standins.getcourse.not_ready_polls = 0
        standins.getcourse.complete_exports()
        await anna.reply("Готово")
        link = await app.services.links.current_link(ANNA)
    assert link is not None
    assert link.email == "anna@example.org"
    assert not any("Не нашёл" in text for text in anna.texts())


def test_the_pace_spends_the_budget_no_faster_than_it_refills() -> None:
    pace = LookupPace(budget=60)  # 120 s per request
    assert pace.ready_at() <= 0  # a quiet spell: at once
    pace.spent(2, at=1000.0)
    assert pace.ready_at() == 1000.0 + 120  # all but one request paid off
    pace.spent(2, at=1120.0)
    assert pace.ready_at() == 1000.0 + 3 * 120
    pace.spent(3, at=10_000.0)  # long after: the debt is gone, only this export counts
    assert pace.ready_at() == 10_000.0 + 2 * 120
    assert pace.ready_at(used=29) == 0.0  # less than half the budget spent: not held back
    assert pace.ready_at(used=30) == 10_000.0 + 2 * 120
    crossing = LookupPace(budget=60)
    for at in range(0, 280, 20):  # 28 requests in the free half: nothing owed for them
        crossing.spent(2, at=float(at), used=at // 10 + 2)
    assert crossing.ready_at(used=30) <= 280.0  # the first export past the half: at once
    crossing.spent(2, at=300.0, used=32)  # past the half: these two are owed
    assert crossing.ready_at(used=32) == 300.0 + 120
    paced_at_once = LookupPace(budget=60, free_share=0.0)  # GETCOURSE_PACE_FREE_SHARE=0
    paced_at_once.spent(2, at=1000.0)
    assert paced_at_once.ready_at(used=2) == 1000.0 + 120

"""GetCourse announces new users (a process over users calls ``/getcourse/events`` on
registration), over loopback HTTP: the local directory learns them, so a launch-day registrant
is a directory hit with no export request, and people already waiting for that email are
answered at once. A row a sync wrote is never overwritten by an event."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import App
from sandbox.getcourse import GetCourseUserRecord
from services.getcourse.directory import MISS, DirectoryMirror
from services.models import GetCourseUser
from services.storage.database import Database
from services.storage.directory import DirectoryRepository
from tests.conftest import Person, StandIns
from tests.running import serving
from tests.test_both_directions import SECRET, both_ways, count, post_event

NEWCOMER = 100000007
NEW_USER = GetCourseUserRecord(
    id=190000001, email="new.student@example.com", first_name="Ольга", phone="+79990001122"
)
# Ivan as a sync stored him: fuller than any event.
IVAN_SYNCED = GetCourseUser(
    "187654321", "ivan.petrov@example.com", "Иван", "Петров", "+79161234567"
)


def export_starts(standins: StandIns) -> int:
    return len([r for r in standins.getcourse.requests if r.endpoint == "users"])


def registered(
    email: str = NEW_USER.email, user_id: int = NEW_USER.id, **more: str
) -> dict[str, str]:
    """What the school's process "on user registration → call URL" sends."""
    person = {"user_id": str(user_id), "email": email}
    return {"secret": SECRET, "event": "registered", **person, **more}


async def directory_rows(app: App) -> list[tuple[str, ...]]:
    rows = await app.services.database.fetchall(
        "SELECT gc_user_id, email, first_name, last_name, phone FROM gc_directory "
        "ORDER BY gc_user_id"
    )
    return [tuple(str(value) for value in row) for row in rows]


@pytest.fixture
async def app(standins: StandIns) -> AsyncIterator[App]:
    standins.getcourse.add_user(NEW_USER)  # registered on GetCourse a moment ago
    async with serving(standins, both_ways(standins)) as running:
        yield running


async def test_an_announced_registrant_is_linked_with_no_export(
    standins: StandIns, app: App
) -> None:
    answer = await post_event(
        app.settings, **registered(first_name="Ольга", phone="+7 999 000-11-22")
    )
    assert answer.status_code == 200
    assert answer.json()["status"] == "waiting"  # stored like any event for someone not linked

    newcomer = Person(standins.telegram, NEWCOMER)
    newcomer.says("New.Student@example.com")
    await newcomer.reply("Готово")
    link = await app.services.links.current_link(NEWCOMER)
    assert link is not None
    assert (link.gc_user_id, link.email) == (str(NEW_USER.id), NEW_USER.email)
    assert export_starts(standins) == 0
    assert await directory_rows(app) == [
        (str(NEW_USER.id), NEW_USER.email, "Ольга", "", "79990001122")
    ]


async def test_someone_waiting_for_the_email_is_answered_when_the_event_arrives(
    standins: StandIns,
) -> None:
    standins.getcourse.add_user(NEW_USER)
    standins.getcourse.not_ready_polls = 10**6  # the export they wait for takes "minutes"
    # Polls far enough apart that the export budget outlasts the wait, and the export is not
    # given up for longer than the test waits for an answer: only the event can answer now.
    settings = both_ways(
        standins,
        getcourse_queued_notice_seconds=0.1,
        getcourse_poll_max_interval=5,
        getcourse_lookup_timeout=120,
    )
    newcomer = Person(standins.telegram, NEWCOMER)
    async with serving(standins, settings) as app:
        newcomer.says(NEW_USER.email)
        await newcomer.reply("Сейчас")
        assert await app.services.lookups.waiting() == 1

        answer = await post_event(settings, **registered())
        assert answer.status_code == 200
        await newcomer.reply("Готово")
        link = await app.services.links.current_link(NEWCOMER)
        assert await app.services.lookups.waiting() == 0
    assert link is not None
    assert link.gc_user_id == str(NEW_USER.id)
    assert export_starts(standins) == 1  # the one still building when the event came


async def test_an_event_never_overwrites_a_known_user(standins: StandIns, app: App) -> None:
    await DirectoryRepository(app.services.database).upsert([IVAN_SYNCED], now=1.0)
    before = await directory_rows(app)

    for params in (
        registered(IVAN_SYNCED.email, 187654321, first_name="Ваня", phone="+70000000000"),
        registered("ivan.new@example.com", 187654321),  # an email changed in GetCourse
    ):
        answer = await post_event(app.settings, **params)
        assert answer.status_code == 200

    assert await directory_rows(app) == before
    row = await app.services.database.fetchone("SELECT synced_at FROM gc_directory")
    assert row is not None
    assert row[0] == 1.0  # nor does it pass for a sync's sighting


async def test_an_email_held_by_another_user_leaves_the_directory_alone(
    standins: StandIns, app: App, caplog: pytest.LogCaptureFixture
) -> None:
    await DirectoryRepository(app.services.database).upsert([IVAN_SYNCED], now=1.0)
    before = await directory_rows(app)

    with caplog.at_level(logging.INFO, logger="services.linking.bridge"):
        answer = await post_event(app.settings, **registered(IVAN_SYNCED.email, 190000002))
    assert answer.status_code == 200

    assert await directory_rows(app) == before
    lines = [r.getMessage() for r in caplog.records if "directory unchanged" in r.getMessage()]
    assert len(lines) == 1
    assert IVAN_SYNCED.email not in lines[0]
    assert "190000002" in lines[0]
    assert IVAN_SYNCED.id in lines[0]


async def test_a_refused_event_teaches_nothing(standins: StandIns, app: App) -> None:
    wrong = {**registered(), "secret": "wrong-secret-0123456789"}
    assert (await post_event(app.settings, **wrong)).status_code == 403
    malformed = {**registered(), "event": "Registered!"}
    assert (await post_event(app.settings, **malformed)).status_code == 400

    assert await directory_rows(app) == []
    assert await count(app, "SELECT COUNT(*) FROM getcourse_events") == 0


async def test_an_email_not_found_a_moment_ago_is_found_after_the_event(
    standins: StandIns,
) -> None:
    newcomer = Person(standins.telegram, NEWCOMER)
    async with serving(standins, both_ways(standins)) as app:
        newcomer.says(NEW_USER.email)  # a moment before registering
        await newcomer.reply("Не нашёл")
        standins.getcourse.add_user(NEW_USER)
        assert (await post_event(app.settings, **registered())).status_code == 200

        newcomer.says(NEW_USER.email)
        await newcomer.reply("Готово")
        link = await app.services.links.current_link(NEWCOMER)
    assert link is not None
    assert link.gc_user_id == str(NEW_USER.id)
    assert export_starts(standins) == 1  # the one that did not find them


class Unasked:
    """GetCourse live: never asked in a test of the local answer."""

    async def find_user_by_email(self, email: str) -> GetCourseUser | None:
        raise AssertionError("asked GetCourse")


async def test_the_not_found_memory_forgets_an_announced_user(tmp_path: Path) -> None:
    database = await Database.open(tmp_path / "bot.sqlite3")
    try:
        repository = DirectoryRepository(database)
        mirror = DirectoryMirror(repository, None, Unasked(), not_found_ttl=60)
        await mirror.remember(NEW_USER.email, None)
        assert await mirror.local_answer(NEW_USER.email) is None  # "not found a moment ago"

        mirror.announced([GetCourseUser(id=str(NEW_USER.id), email=NEW_USER.email)])
        assert await mirror.local_answer(NEW_USER.email) is MISS
    finally:
        await database.close()

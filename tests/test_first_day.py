"""A school's first day over loopback HTTP (issue 11): the first sync walks newest-first and its
windows answer the people waiting, one export for all of them; lookups go before sync windows;
and the bot copes with a GetCourse that does not know the ``email`` filter (908 or ignored),
refuses undocumented statuses (914) or takes ``created_at[to]`` as exclusive."""

from __future__ import annotations

from datetime import date, timedelta

import aiosqlite

from bot.settings import Settings
from sandbox.getcourse import GetCourseStandIn, GetCourseUserRecord
from services.getcourse.directory_sync import SyncKind
from tests.conftest import OPERATOR_ID, Person, StandIns, eventually, polling_bot

SINCE = date(2023, 11, 1)  # the seed's first registration is 2023-11-30
SEED_USERS = 12
IVAN = 100000001
RECENT = 100000002
NOBODY = 100000003
TODAY = date.today()


def first_day_settings(**overrides: object) -> dict[str, object]:
    return {
        "getcourse_sync_since": SINCE,
        "getcourse_sync_window_days": 30,
        "getcourse_sync_reserve": 0,
        **overrides,
    }


def add_recent_user(getcourse: GetCourseStandIn) -> None:
    getcourse.add_user(
        GetCourseUserRecord(
            id=187690001,
            email="recent@example.com",
            created_at=f"{TODAY - timedelta(days=3)} 09:00:00",
        )
    )


def held_exports(standins: StandIns, **overrides: object) -> Settings:
    """Settings for a test that releases each export itself (``complete_exports``): until then
    every poll answers "not ready", and nobody gives up on it."""
    standins.getcourse.not_ready_polls = 10**6
    return standins.settings(
        **first_day_settings(),
        getcourse_poll_max_interval=0.2,
        getcourse_lookup_timeout=60,
        getcourse_queued_notice_seconds=0.1,
        **overrides,
    )


def add_newcomer(getcourse: GetCourseStandIn) -> None:
    """Someone who registers after the sync."""
    getcourse.add_user(GetCourseUserRecord(id=187690002, email="newcomer@example.com"))


def export_starts(standins: StandIns) -> list[dict[str, str]]:
    return [r.params for r in standins.getcourse.requests if r.endpoint == "users" and r.counted]


def window(first: date, last: date) -> dict[str, str]:
    """The filters of a window export: ``to`` one day past its last day."""
    return {
        "created_at[from]": first.isoformat(),
        "created_at[to]": (last + timedelta(days=1)).isoformat(),
    }


async def directory_ids(standins: StandIns) -> set[str]:
    async with aiosqlite.connect(standins.database_path) as db:
        rows = await db.execute_fetchall("SELECT gc_user_id FROM gc_directory")
    return {str(row[0]) for row in rows}


async def test_before_any_sync_the_first_windows_answer_everyone_waiting(
    standins: StandIns,
) -> None:
    getcourse = standins.getcourse
    add_recent_user(getcourse)
    settings = held_exports(standins, getcourse_coalesce_seconds=0.3)
    ivan, recent = Person(standins.telegram, IVAN), Person(standins.telegram, RECENT)
    nobody = Person(standins.telegram, NOBODY)
    async with polling_bot(standins, settings):
        ivan.says("ivan.petrov@example.com")
        recent.says("recent@example.com")
        nobody.says("nobody@example.com")
        await eventually(lambda: getcourse.exports_started() == 1)
        getcourse.complete_exports()  # the newest window: the recent registrant is in it
        await recent.reply("Готово")
        assert not any("Готово" in text for text in ivan.texts())  # older: not read yet
        await eventually(lambda: getcourse.exports_started() == 2)
        getcourse.complete_exports()
        await ivan.reply("Готово")
        await nobody.reply("Не нашёл")
    # One export for the three of them at each step, widening to older registrations, and no
    # email export at all. The first window was sparse: every older day fit in the second, and
    # that last one reached today again (a few users re-read), so nobody who wrote after the
    # sync began needed an export of the recent registrations to be told "not found".
    assert export_starts(standins) == [
        window(TODAY - timedelta(days=29), TODAY),
        window(SINCE, TODAY),
    ]


async def test_people_queued_while_a_window_builds_share_the_next_export(
    standins: StandIns,
) -> None:
    getcourse = standins.getcourse
    add_recent_user(getcourse)
    # The first sync is due at start: it begins with the bot.
    settings = held_exports(standins, getcourse_full_sync_hours=24)
    ivan, recent = Person(standins.telegram, IVAN), Person(standins.telegram, RECENT)
    nobody = Person(standins.telegram, NOBODY)
    async with polling_bot(standins, settings):
        await eventually(lambda: getcourse.exports_started() == 1)  # the newest window
        ivan.says("ivan.petrov@example.com")  # alone: the queue takes him up at once
        await ivan.reply("Сейчас")
        recent.says("recent@example.com")
        nobody.says("nobody@example.com")
        await nobody.reply("Сейчас")
        getcourse.complete_exports()
        await recent.reply("Готово")
        await eventually(lambda: getcourse.exports_started() == 2)
        getcourse.complete_exports()
        await ivan.reply("Готово")
        await nobody.reply("Не нашёл")
    # Ivan's turn waited for the window in flight, and took the two who queued meanwhile along:
    # one export for the three of them, no email export for Ivan alone (the sync then goes on
    # with its status steps).
    starts = export_starts(standins)
    assert starts[:2] == [window(TODAY - timedelta(days=29), TODAY), window(SINCE, TODAY)]
    assert not any("email" in params for params in starts)


async def test_a_lone_miss_while_people_keep_writing_waits_to_share_an_export(
    standins: StandIns,
) -> None:
    settings = standins.settings(**first_day_settings(), getcourse_coalesce_seconds=1.0)
    ivan, recent = Person(standins.telegram, IVAN), Person(standins.telegram, RECENT)
    nobody = Person(standins.telegram, NOBODY)
    async with polling_bot(standins, settings) as app:
        await app.services.sync.run(SyncKind.FULL)
        synced = len(export_starts(standins))
        ivan.says("ivan.petrov@example.com")  # in the directory: answered at no cost
        await ivan.reply("Готово")
        recent.says("stranger@example.com")  # alone in the queue, but the bot is busy

        async def queued() -> bool:
            return await app.services.lookups.waiting() == 1

        await eventually(queued)
        nobody.says("nobody@example.com")  # within the gather window
        await recent.reply("Не нашёл")
        await nobody.reply("Не нашёл")
    # One export of today's registrations for both unknown emails, not one each.
    assert export_starts(standins)[synced:] == [window(TODAY, TODAY)]


async def test_lookups_go_before_the_next_window_of_a_sync(standins: StandIns) -> None:
    getcourse = standins.getcourse
    # The first sync is due at start: it begins with the bot.
    settings = held_exports(standins, getcourse_full_sync_hours=24)
    ivan = Person(standins.telegram, IVAN)
    async with polling_bot(standins, settings) as app:
        await eventually(lambda: getcourse.exports_started() == 1)  # the newest window
        ivan.says("ivan.petrov@example.com")
        await ivan.reply("Сейчас")
        getcourse.not_ready_polls = 0
        getcourse.complete_exports()
        await ivan.reply("Готово")

        async def synced() -> bool:
            return await app.services.sync.last_done(SyncKind.FULL) is not None

        await eventually(synced)
    starts = export_starts(standins)
    assert starts[:2] == [
        window(TODAY - timedelta(days=29), TODAY),
        {"email": "ivan.petrov@example.com"},
    ]
    assert [s.get("status") for s in starts[-2:]] == ["banned", "deactivated"]


async def test_an_unknown_email_filter_is_learned_once_and_a_window_answers(
    standins: StandIns,
) -> None:
    getcourse = standins.getcourse
    getcourse.email_filter_unknown = True  # alone it answers 908
    settings = standins.settings(**first_day_settings())
    ivan, nobody = Person(standins.telegram, IVAN), Person(standins.telegram, NOBODY)
    async with polling_bot(standins, settings) as app:
        await app.services.sync.run(SyncKind.FULL)
        add_newcomer(getcourse)
        ivan.says("newcomer@example.com")
        await ivan.reply("Готово")
    refused = [r for r in getcourse.requests if r.error_code == 908]
    assert len(refused) == 1
    # Remembered in the database: after a restart a lone miss goes straight to a window.
    getcourse.add_user(GetCourseUserRecord(id=187690003, email="later@example.com"))
    later = Person(standins.telegram, RECENT)
    async with polling_bot(standins, settings):
        later.says("later@example.com")
        await later.reply("Готово")
        nobody.says("nobody@example.com")
        await nobody.reply("Не нашёл")
    assert [r for r in getcourse.requests if r.error_code == 908] == refused
    assert not any("email" in params for params in export_starts(standins)[-3:])


async def test_an_operator_looking_up_a_newcomer_is_answered_without_the_email_filter(
    standins: StandIns,
) -> None:
    standins.getcourse.email_filter_unknown = True
    operator = Person(standins.telegram, OPERATOR_ID)
    async with polling_bot(standins, standins.settings(**first_day_settings())) as app:
        await app.services.sync.run(SyncKind.FULL)
        add_newcomer(standins.getcourse)
        operator.says(f"/link {NOBODY} newcomer@example.com")
        proposal = await operator.reply(lambda message: "GetCourse:" in (message.text or ""))
        assert "найден пользователь <code>187690002</code>" in (proposal.text or "")
        operator.says(f"/link {NOBODY} nobody@example.com")
        await operator.reply(lambda message: "нет пользователя" in (message.text or ""))
    # The 908 was learned once; each later miss read the day's registrations instead.
    assert len([r for r in standins.getcourse.requests if r.error_code == 908]) == 1
    assert export_starts(standins)[-1] == window(TODAY, TODAY)


async def test_an_ignored_email_filter_is_learned_and_single_misses_use_a_window(
    standins: StandIns,
) -> None:
    getcourse = standins.getcourse
    getcourse.email_filter_ignored = True  # alone it gives everyone
    settings = standins.settings(**first_day_settings())
    ivan, anna = Person(standins.telegram, IVAN), Person(standins.telegram, RECENT)
    async with polling_bot(standins, settings) as app:
        ivan.says("ivan.petrov@example.com")  # answered right, from the whole account
        await ivan.reply("Готово")
        await app.services.sync.run(SyncKind.FULL)
        starts_before = len(export_starts(standins))
        add_newcomer(getcourse)
        anna.says("newcomer@example.com")
        await anna.reply("Готово")
    assert export_starts(standins)[0] == {"email": "ivan.petrov@example.com"}
    assert export_starts(standins)[starts_before:] == [window(TODAY, TODAY)]


async def test_a_status_refused_with_914_is_skipped_and_the_full_sync_finishes(
    standins: StandIns,
) -> None:
    getcourse = standins.getcourse
    getcourse.documented_statuses_only = True
    settings = standins.settings(**first_day_settings())
    ivan = Person(standins.telegram, IVAN)
    async with polling_bot(standins, settings) as app:
        ivan.says("ivan.petrov@example.com")
        await ivan.reply("Готово")
        first = await app.services.sync.run(SyncKind.FULL)
        record = getcourse.user_by_email("ivan.petrov@example.com")
        assert record is not None
        getcourse.users.remove(record)  # deleted in GetCourse
        second = await app.services.sync.run(SyncKind.FULL)
        link = await app.services.links.current_link(IVAN)
    assert first.complete
    assert first.rows == SEED_USERS
    refused = [r.params["status"] for r in getcourse.requests if r.error_code == 914]
    assert refused == ["banned", "deactivated"]  # asked once each, then remembered
    assert second.complete
    assert (second.removed, second.orphaned_links) == (1, 1)  # still found without statuses
    assert link is not None  # flagged to operators, kept
    assert "187654321" not in await directory_ids(standins)


async def test_an_exclusive_created_at_to_loses_nobody(standins: StandIns) -> None:
    getcourse = standins.getcourse
    getcourse.created_to_exclusive = True
    # Someone registered today and someone on the last day of each fixed window.
    boundaries = [TODAY, TODAY - timedelta(days=200), TODAY - timedelta(days=400)]
    for number, day in enumerate(boundaries):
        getcourse.add_user(
            GetCourseUserRecord(
                id=187691000 + number,
                email=f"edge{number}@example.com",
                created_at=f"{day} 00:00:00",
            )
        )
    settings = standins.settings(
        # Fixed 200-day windows.
        **first_day_settings(getcourse_sync_window_users=0, getcourse_sync_window_days=200)
    )
    async with polling_bot(standins, settings) as app:
        result = await app.services.sync.run(SyncKind.FULL)
    assert result.complete
    assert result.rows == len(getcourse.users)
    assert await directory_ids(standins) == {str(user.id) for user in getcourse.users}

"""The local GetCourse directory over loopback HTTP: full sync by ``created_at`` windows,
resuming a killed sync at its saved export, incremental sync, users gone from GetCourse, banned
and deactivated users, phones, the shared export budget, lookups answered from the directory,
and the Tech API path."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta

import aiosqlite
import httpx
import pytest

from bot.app import Services, create_services
from bot.settings import Settings
from bot.sync_cli import run_sync
from sandbox.getcourse import GetCourseUserRecord
from sandbox.server import Fault
from services.errors import GetCourseBadResponse, GetCourseConfigError, GetCourseUnavailable
from services.getcourse.directory_sync import (
    DirectorySync,
    SyncKind,
    SyncPolicy,
    SyncResult,
    next_window_first,
)
from services.getcourse.tech_api import GetCourseTechClient
from services.notifications import OperatorEvent, OperatorNotice
from services.storage.directory import DirectoryRepository
from tests.conftest import OPERATOR_ID, Person, StandIns, eventually, polling_bot
from tests.operator_console import OPERATOR_CHAT, operator_chat_notices, plain

IVAN = 100000001
MARIA = 100000002
SEED_USERS = 12  # sandbox/data/getcourse_users.json
# The seed's users GetCourse holds as banned and as deactivated.
SEED_BLOCKED = {"187654326": "banned", "187654325": "deactivated"}
SINCE = date(2023, 11, 1)  # the seed's first registration is 2023-11-30
WINDOW_DAYS = 200
TECH_TOKEN = "dev-key-0123_school-key-4567"
# How the operators' notices of blocked students and of a misconfigured GetCourse read.
BLOCKED_NOTICE = "привязки заблокирован"
MISCONFIGURED_NOTICE = "GetCourse: ошибка настройки"


@asynccontextmanager
async def services_of(settings: Settings) -> AsyncIterator[Services]:
    """The services alone (no bot, no background loops), closed on the way out."""
    services = await create_services(settings)
    try:
        yield services
    finally:
        await services.close()


@asynccontextmanager
async def fully_synced(standins: StandIns) -> AsyncIterator[Services]:
    """The services once a one-window full sync has copied GetCourse's users."""
    async with services_of(one_window_settings(standins)) as services:
        await services.sync.run(SyncKind.FULL)
        yield services


def sync_settings(**overrides: object) -> dict[str, object]:
    return {
        "getcourse_sync_since": SINCE,
        "getcourse_sync_window_days": WINDOW_DAYS,
        "getcourse_sync_window_users": 0,  # fixed windows, so a test can name them
        "getcourse_sync_reserve": 0,
        **overrides,
    }


def one_window_settings(standins: StandIns, **overrides: object) -> Settings:
    """Settings whose full syncs read the whole seed in one window."""
    return standins.settings(**sync_settings(getcourse_sync_window_days=5000, **overrides))


def after(day: date) -> str:
    """A window's ``created_at[to]``: one day past its last day (``to`` may be exclusive)."""
    return (day + timedelta(days=1)).isoformat()


def windows_until_today() -> list[tuple[str, str]]:
    """The fixed windows of a sync since ``SINCE``, newest first."""
    last, windows = date.today(), []
    while last >= SINCE:
        first = max(SINCE, last - timedelta(days=WINDOW_DAYS - 1))
        windows.append((first.isoformat(), after(last)))
        last = first - timedelta(days=1)
    return windows


def window_filters(standins: StandIns) -> list[tuple[str, str]]:
    """The ``created_at`` windows of the users exports GetCourse started, in order."""
    return [
        (r.params["created_at[from]"], r.params.get("created_at[to]", ""))
        for r in standins.getcourse.requests
        if r.endpoint == "users" and r.counted and "created_at[from]" in r.params
    ]


def status_filters(standins: StandIns) -> list[str]:
    """The ``status`` of the users exports GetCourse started, in order."""
    return [
        r.params["status"]
        for r in standins.getcourse.requests
        if r.endpoint == "users" and r.counted and "status" in r.params
    ]


async def directory_emails(standins: StandIns) -> set[str]:
    async with aiosqlite.connect(standins.database_path) as db:
        rows = await db.execute_fetchall("SELECT email FROM gc_directory")
    return {str(row[0]) for row in rows}


async def directory_statuses(standins: StandIns) -> dict[str, str]:
    """GetCourse user ID -> status, for the directory's users with a known status."""
    async with aiosqlite.connect(standins.database_path) as db:
        rows = await db.execute_fetchall(
            "SELECT gc_user_id, status FROM gc_directory WHERE status IS NOT NULL"
        )
    return {str(row[0]): str(row[1]) for row in rows}


async def test_full_sync_by_windows_then_lookup_is_answered_without_an_export(
    standins: StandIns,
) -> None:
    settings = standins.settings(**sync_settings())
    async with polling_bot(standins, settings) as app:
        result = await app.services.sync.run(SyncKind.FULL)
        assert result == SyncResult(SyncKind.FULL, complete=True, rows=SEED_USERS)
        assert window_filters(standins) == windows_until_today()
        assert status_filters(standins) == ["banned", "deactivated"]
        emails = await directory_emails(standins)
        assert len(emails) == SEED_USERS
        assert "maria.sidorova@example.com" in emails  # normalised
        stored = await DirectoryRepository(app.services.database).by_phone("+7 916 123-45-67")
        # Only the columns lookups and cards use are kept: no custom field ("Тариф").
        assert [(u.id, u.full_name, u.custom_fields) for u in stored] == [
            ("187654321", "Иван Петров", {"Создан": stored[0].custom_fields["Создан"]})
        ]
        columns = await app.services.database.fetchall("PRAGMA table_info(gc_directory)")
        assert "custom_fields" not in {column["name"] for column in columns}

        requests_before = len(standins.getcourse.requests)
        ivan = Person(standins.telegram, IVAN)
        ivan.says("ivan.petrov@example.com")
        await ivan.reply("Готово")
        assert not [text for text in ivan.texts() if "Проверяю" in text]  # answered at once
        link = await app.services.links.current_link(IVAN)
        assert link is not None
        assert link.gc_user_id == "187654321"
        assert len(standins.getcourse.requests) == requests_before


async def test_windows_narrow_over_a_launch_and_empty_years_cost_one_export(
    standins: StandIns,
) -> None:
    getcourse = standins.getcourse
    today = date.today()
    launch = [  # the last year was busy: a registration every three days
        GetCourseUserRecord(
            id=187700000 + n,
            email=f"launch{n}@example.com",
            created_at=f"{today - timedelta(days=3 * n)} 12:00:00",
        )
        for n in range(120)
    ]
    for user in launch:
        getcourse.add_user(user)
    since = date(2015, 1, 1)  # nine empty years before the seed's first registration
    settings = standins.settings(
        **sync_settings(
            getcourse_sync_since=since,
            getcourse_sync_window_days=30,
            getcourse_sync_window_users=8,
        )
    )
    async with polling_bot(standins, settings) as app:
        result = await app.services.sync.run(SyncKind.FULL)

    windows = [(date.fromisoformat(a), date.fromisoformat(b)) for a, b in window_filters(standins)]
    assert result.complete
    assert result.rows == len(getcourse.users) == SEED_USERS + len(launch)
    # Newest first, contiguous from tomorrow ("to" may be exclusive) back to the first day.
    assert windows[0][1] == today + timedelta(days=1)
    assert windows[-1][0] == since
    assert all(c == b for (b, _), (_, c) in itertools.pairwise(windows))
    launch_start = today - timedelta(days=3 * 119)
    in_launch = [w for w in windows if w[0] >= launch_start]
    assert len(in_launch) >= 5  # the busy year was split
    # Once a window held nobody, every older day (the seed and the empty years) took one export.
    assert len(windows) - len(in_launch) <= 3


async def test_sync_killed_mid_window_resumes_at_its_saved_export(standins: StandIns) -> None:
    getcourse = standins.getcourse
    getcourse.not_ready_polls = 10_000  # the first window's export keeps building
    settings = standins.settings(**sync_settings(), getcourse_lookup_timeout=60)
    async with services_of(settings) as services:
        running = asyncio.create_task(services.sync.run(SyncKind.FULL))
        await eventually(lambda: any(r.endpoint == "exports" for r in getcourse.requests))
        running.cancel()  # what a kill leaves behind: the run and its export ID, in the database
        await asyncio.gather(running, return_exceptions=True)
    first_export = next(r.path for r in getcourse.requests if r.endpoint == "exports")

    getcourse.not_ready_polls = 0
    async with services_of(settings) as services:  # a restart on the same database
        result = await services.sync.run(SyncKind.FULL)
    assert result.complete
    assert result.rows == SEED_USERS
    # The first window was started once and collected after the restart by its saved ID.
    assert window_filters(standins) == windows_until_today()
    polls = [r.path for r in getcourse.requests if r.endpoint == "exports" and r.counted]
    assert polls.count(first_export) >= 2
    assert len(await directory_emails(standins)) == SEED_USERS


async def test_incremental_sync_starts_where_the_last_complete_run_began(
    standins: StandIns,
) -> None:
    async with fully_synced(standins) as services:
        standins.getcourse.add_user(GetCourseUserRecord(id=187659999, email="newcomer@example.com"))
        starts_before = len(window_filters(standins))
        result = await services.sync.run(SyncKind.INCREMENTAL)
    assert result.complete
    assert result.rows == 1
    # The full run began today: the days since then are all an incremental run has to read.
    today = date.today()
    assert window_filters(standins)[starts_before:] == [(today.isoformat(), after(today))]
    assert "newcomer@example.com" in await directory_emails(standins)


class Recorder:
    def __init__(self) -> None:
        self.notices: list[OperatorNotice] = []

    def notify(self, notice: OperatorNotice) -> None:
        self.notices.append(notice)


async def test_full_sync_drops_deleted_users_and_flags_their_links(standins: StandIns) -> None:
    async with fully_synced(standins) as services:
        await services.links.link(IVAN, IVAN, "ivan.petrov@example.com")
        ivan = standins.getcourse.user_by_email("ivan.petrov@example.com")
        assert ivan is not None
        standins.getcourse.users.remove(ivan)
        recorder = Recorder()
        sync = DirectorySync(
            services.database,
            services.getcourse,
            services.budget,
            SyncPolicy(window_days=5000, since=SINCE, reserve=0),
            notifier=recorder,
        )
        result = await sync.run(SyncKind.FULL)
        link = await services.links.current_link(IVAN)
    assert (result.removed, result.orphaned_links) == (1, 1)
    assert "ivan.petrov@example.com" not in await directory_emails(standins)
    assert link is not None
    assert link.gc_user_id == "187654321"
    assert recorder.notices == [
        OperatorNotice(
            OperatorEvent.LINKED_USER_GONE, {"telegram_id": str(IVAN), "gc_user_id": "187654321"}
        )
    ]


async def test_full_sync_learns_who_is_banned_or_deactivated(standins: StandIns) -> None:
    settings = one_window_settings(standins)
    async with services_of(settings) as services:
        result = await services.sync.run(SyncKind.FULL)
        statuses = await directory_statuses(standins)
        requests_before = len(standins.getcourse.requests)
        # A student's lookup still answers from the directory, with the real status.
        sergey = await services.directory.find_user_by_email("sergey.volkov@example.com")
    assert result.complete
    assert result.rows == SEED_USERS  # the status exports re-read users, not counted twice
    assert statuses == SEED_BLOCKED
    assert status_filters(standins) == ["banned", "deactivated"]
    assert sergey is not None
    assert (sergey.id, sergey.status) == ("187654326", "banned")
    assert len(standins.getcourse.requests) == requests_before


async def test_a_user_unbanned_in_getcourse_loses_the_status_at_the_next_full_sync(
    standins: StandIns,
) -> None:
    async with fully_synced(standins) as services:
        sergey = standins.getcourse.user_by_email("sergey.volkov@example.com")
        dmitry = standins.getcourse.user_by_email("dmitry.ivanov@example.net")
        assert sergey is not None
        assert dmitry is not None
        sergey.status = "active"
        dmitry.status = "banned"
        await services.sync.run(SyncKind.INCREMENTAL)  # asks no status: nothing changes yet
        after_incremental = await directory_statuses(standins)
        await services.sync.run(SyncKind.FULL)
        after_full = await directory_statuses(standins)
    assert after_incremental == SEED_BLOCKED
    # Not banned any more is all the answer proves: NULL, not a guessed "active".
    assert after_full == {"187654325": "banned"}


def noticed_sync_settings(standins: StandIns) -> Settings:
    """One-window full syncs, operator notices sent soon to the operators' chat."""
    return one_window_settings(
        standins, operator_chat_id=OPERATOR_CHAT, operator_notice_interval=0.2
    )


async def test_a_linked_student_banned_in_getcourse_is_told_to_operators_once(
    standins: StandIns,
) -> None:
    settings = noticed_sync_settings(standins)
    ivan, operator = Person(standins.telegram, IVAN), Person(standins.telegram, OPERATOR_ID)
    async with polling_bot(standins, settings) as app:
        await app.services.sync.run(SyncKind.FULL)  # Sergey is banned, but nobody's link
        ivan.says("ivan.petrov@example.com")
        await ivan.reply("Готово")
        record = standins.getcourse.user_by_email("ivan.petrov@example.com")
        assert record is not None
        record.status = "banned"
        first = await app.services.sync.run(SyncKind.FULL)
        second = await app.services.sync.run(SyncKind.FULL)
        operator.says("/find ivan.petrov@example.com")
        card = await operator.reply(lambda message: f"Telegram {IVAN}" in (message.text or ""))
        link = await app.services.links.current_link(IVAN)
    # Shutting down delivered whatever notices were pending.
    notices = operator_chat_notices(standins, BLOCKED_NOTICE)
    assert (first.blocked_links, second.blocked_links) == (1, 0)
    assert len(notices) == 1
    assert "заблокирован или отключён — 1." in notices[0]
    assert f"telegram_id={IVAN}, gc_user_id=187654321, status=banned" in notices[0]
    assert link is not None
    assert link.gc_user_id == "187654321"  # kept
    assert "⛔ GetCourse: статус — заблокирован" in plain(card.text or "")


async def test_linking_to_a_user_already_banned_links_and_tells_operators_once(
    standins: StandIns,
) -> None:
    settings = noticed_sync_settings(standins)
    sergey = Person(standins.telegram, IVAN)
    async with polling_bot(standins, settings) as app:
        await app.services.sync.run(SyncKind.FULL)  # learns that Sergey is banned
        sergey.says("sergey.volkov@example.com")
        await sergey.reply("Готово")
        again = await app.services.sync.run(SyncKind.FULL)
        link = await app.services.links.current_link(IVAN)
    notices = operator_chat_notices(standins, BLOCKED_NOTICE)
    assert link is not None
    assert link.gc_user_id == "187654326"  # the key is right all the same
    assert again.blocked_links == 0  # the sync does not tell it a second time
    assert len(notices) == 1
    assert f"telegram_id={IVAN}, gc_user_id=187654326, status=banned" in notices[0]


async def test_status_exports_stop_at_the_reserve_and_a_failed_one_keeps_the_windows(
    standins: StandIns,
) -> None:
    # A budget of 6 with 2 in reserve: the one window and the banned export, then a pause.
    settings = one_window_settings(standins, getcourse_export_budget=6, getcourse_sync_reserve=2)
    async with services_of(settings) as services:
        paused = await services.sync.run(SyncKind.FULL)
        spent = await services.budget.used()
        after_pause = await directory_statuses(standins)
        services.budget.limit = 100  # the window cleared
        standins.getcourse.faults.add("users", Fault(status=502, body="Bad Gateway"))
        with pytest.raises(GetCourseUnavailable):
            await services.sync.run(SyncKind.FULL)
        resumed = await services.sync.run(SyncKind.FULL)
    assert not paused.complete
    assert spent == 4
    assert after_pause == {"187654326": "banned"}
    assert resumed.complete
    assert resumed.rows == SEED_USERS
    assert await directory_statuses(standins) == SEED_BLOCKED
    # Neither the pause nor the failure cost the window again.
    assert window_filters(standins) == [(SINCE.isoformat(), after(date.today()))]
    assert status_filters(standins) == ["banned", "deactivated"]


async def test_a_status_export_cut_off_resumes_at_its_saved_export(standins: StandIns) -> None:
    getcourse = standins.getcourse
    settings = one_window_settings(
        standins, getcourse_export_budget=4, getcourse_sync_reserve=0, getcourse_lookup_timeout=60
    )
    async with services_of(settings) as services:
        await services.sync.run(SyncKind.FULL)  # the window and the banned export
        services.budget.limit = 100
        getcourse.not_ready_polls = 10_000  # the deactivated export keeps building
        running = asyncio.create_task(services.sync.run(SyncKind.FULL))
        await eventually(
            lambda: len([r for r in getcourse.requests if r.endpoint == "exports"]) > 2
        )
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        getcourse.not_ready_polls = 0
        result = await services.sync.run(SyncKind.FULL)
    assert result.complete
    assert status_filters(standins) == ["banned", "deactivated"]  # started once, collected later
    assert await directory_statuses(standins) == SEED_BLOCKED


async def test_directory_answers_carry_phones_in_international_form(standins: StandIns) -> None:
    getcourse = standins.getcourse
    for number, phone in enumerate(["8 (903) 765-43-21", "+84 912 345 678", "916 000-11-22"]):
        getcourse.add_user(
            GetCourseUserRecord(
                id=187670000 + number, email=f"phone{number}@example.com", phone=phone
            )
        )
    async with fully_synced(standins) as services:
        directory = DirectoryRepository(services.database)

        async def phones(typed: str) -> list[tuple[str, str]]:
            return [(user.id, user.phone) for user in await directory.by_phone(typed)]

        ivan = await directory.by_email("ivan.petrov@example.com")
        found = {
            typed: await phones(typed)
            for typed in (
                "+7 916 123-45-67",
                "8 916 123-45-67",
                "79161234567",
                "+7 (903) 765 43 21",
                "89037654321",
                "+84 912 345 678",
                "84912345678",
                "916 000 11 22",
            )
        }
    assert ivan is not None
    assert ivan.phone == "+79161234567"  # as a live export gives it, not "79161234567"
    ivans = [("187654321", "+79161234567")]
    assert found == {
        "+7 916 123-45-67": ivans,
        "8 916 123-45-67": ivans,  # the Russian trunk prefix reads as +7
        "79161234567": ivans,
        "+7 (903) 765 43 21": [("187670000", "+79037654321")],  # stored from "8 (903) …"
        "89037654321": [("187670000", "+79037654321")],
        "+84 912 345 678": [("187670001", "+84912345678")],  # with "+", an 8 stays an 8
        "84912345678": [("187670001", "+84912345678")],  # typed without "+": either reading
        "916 000 11 22": [("187670002", "9160001122")],  # no country code: no "+" invented
    }


async def test_sync_stops_at_the_reserve_kept_for_lookups_and_resumes(standins: StandIns) -> None:
    # A budget of 10 with 6 in reserve leaves room for two windows of start + poll.
    settings = standins.settings(
        **sync_settings(getcourse_export_budget=10, getcourse_sync_reserve=6)
    )
    async with services_of(settings) as services:
        paused = await services.sync.run(SyncKind.FULL)
        spent = await services.budget.used()
        # A live lookup (not in the two windows synced) still has the reserve.
        found = await services.directory.find_user_by_email("alexey.sokolov@example.com")
        services.budget.limit = 100  # the window cleared
        resumed = await services.sync.run(SyncKind.FULL)
    assert not paused.complete
    assert spent == 4
    assert found is not None
    assert resumed.complete
    assert window_filters(standins) == windows_until_today()
    assert status_filters(standins) == ["banned", "deactivated"]


async def test_budget_ledger_is_shared_by_sync_and_lookups(standins: StandIns) -> None:
    async with fully_synced(standins) as services:
        assert await services.directory.find_user_by_email("nobody@example.com") is None
        used = await services.budget.used()
    # One window and two status exports (a start and a poll each), then the lookup's export.
    assert used == len([r for r in standins.getcourse.requests if r.counted]) == 8


async def test_tech_api_answers_a_miss_without_export_budget(standins: StandIns) -> None:
    standins.getcourse.tech_token = TECH_TOKEN
    settings = standins.settings(getcourse_tech_api_key=TECH_TOKEN)
    ivan, maria = Person(standins.telegram, IVAN), Person(standins.telegram, MARIA)
    async with polling_bot(standins, settings) as app:
        ivan.says("anna@example.org")
        await ivan.reply("Готово")
        maria.says("nobody@example.com")
        await maria.reply("Не нашёл")
        maria.says("nobody@example.com")  # within GETCOURSE_NOT_FOUND_TTL: not asked again
        await maria.reply("Не нашёл")
        link = await app.services.links.current_link(IVAN)
        stored = await DirectoryRepository(app.services.database).by_email("anna@example.org")
    assert link is not None
    assert link.gc_user_id == "187654322"
    assert stored is not None
    assert stored.first_name == "Анна"
    # Lookups only (the link's GetCourse field write goes to the import API).
    lookups = [r for r in standins.getcourse.requests if r.endpoint != "import"]
    asked = [r.params for r in lookups]
    assert asked == [{"email": "anna@example.org"}, {"email": "nobody@example.com"}]
    assert all(r.endpoint == "tech_get_fields" for r in lookups)


async def test_tech_api_refusal_or_outage_falls_back_to_an_export(standins: StandIns) -> None:
    standins.getcourse.tech_token = "another_token"
    settings = standins.settings(getcourse_tech_api_key=TECH_TOKEN)
    ivan, maria = Person(standins.telegram, IVAN), Person(standins.telegram, MARIA)
    async with polling_bot(standins, settings):
        ivan.says("anna@example.org")
        await ivan.reply("Готово")
        standins.getcourse.tech_token = TECH_TOKEN
        standins.getcourse.faults.add("tech_get_fields", Fault(status=502, body="Bad Gateway"))
        maria.says("ivan.petrov@example.com")
        await maria.reply("Готово")
    assert emails_asked(standins) == exported_after_tech(
        "anna@example.org", "ivan.petrov@example.com"
    )


async def test_tech_api_html_404_is_a_setup_problem_told_once_never_not_found(
    standins: StandIns,
) -> None:
    standins.getcourse.tech_token = TECH_TOKEN
    standins.getcourse.tech_api_missing = True  # an HTML 404 page, not GetCourse's JSON
    settings = standins.settings(
        getcourse_tech_api_key=TECH_TOKEN,
        operator_chat_id=OPERATOR_CHAT,
        operator_notice_interval=0.2,
    )
    ivan, maria = Person(standins.telegram, IVAN), Person(standins.telegram, MARIA)
    async with polling_bot(standins, settings) as app:
        ivan.says("anna@example.org")
        await ivan.reply("Готово")  # answered by an export, not "not found"
        maria.says("ivan.petrov@example.com")
        await maria.reply("Готово")
        await eventually(lambda: operator_chat_notices(standins, MISCONFIGURED_NOTICE))
        assert app.services.calls.status("getcourse").last_failure_cause == "config_error"
        # Once the Tech API answers as it should, a nobody is "not found" through it again.
        standins.getcourse.tech_api_missing = False
        sergey = Person(standins.telegram, 100000003)
        sergey.says("nobody@example.com")
        await sergey.reply("Не нашёл")
    assert emails_asked(standins) == [
        *exported_after_tech("anna@example.org", "ivan.petrov@example.com"),
        ("tech_get_fields", "nobody@example.com"),
    ]
    # One notice for the two lookups.
    [notice] = operator_chat_notices(standins, MISCONFIGURED_NOTICE)
    assert "— 1\n" in notice
    assert "/pl/api/v1" in notice


@pytest.mark.parametrize(
    "page",
    [
        Fault(status=404, body="<html><body>Not Found</body></html>"),
        Fault(status=404, body=""),
        Fault(status=404, json_body={"error": "Not Found"}),
        Fault(status=404, json_body={"status": False, "code": 403, "message": "Нет доступа"}),
    ],
    ids=["html", "empty", "other-json", "other-code"],
)
async def test_tech_api_404_is_not_found_only_as_getcourse_json(
    standins: StandIns, page: Fault
) -> None:
    standins.getcourse.tech_token = TECH_TOKEN
    notifier = Recorder()
    async with httpx.AsyncClient(base_url=standins.getcourse.base_url) as http:
        tech = GetCourseTechClient(http, TECH_TOKEN, notifier=notifier)
        assert await tech.find_user_by_email("nobody@example.com") is None  # GetCourse's JSON
        standins.getcourse.faults.add("tech_get_fields", page, times=2)
        for _ in range(2):
            with pytest.raises(GetCourseConfigError):
                await tech.find_user_by_email("nobody@example.com")
        assert await tech.find_user_by_email("nobody@example.com") is None
        standins.getcourse.faults.add("tech_get_fields", page)
        with pytest.raises(GetCourseConfigError):
            await tech.find_user_by_email("nobody@example.com")
    # Once per spell of trouble: told again only after a proper answer came between.
    assert [notice.event for notice in notifier.notices] == [
        OperatorEvent.GETCOURSE_MISCONFIGURED
    ] * 2


async def test_a_cut_off_export_answer_fails_the_window_and_keeps_it_for_the_next_run(
    standins: StandIns,
) -> None:
    settings = one_window_settings(standins)
    truncated = '{"success": true, "info": {"fields": ["id", "Email"], "items": [["1", "a@b.c"], ['
    standins.getcourse.faults.add("exports", Fault(status=200, body=truncated))
    async with services_of(settings) as services:
        with pytest.raises(GetCourseBadResponse):
            await services.sync.run(SyncKind.FULL)
        retried = await services.sync.run(SyncKind.FULL)
    assert retried.complete
    assert retried.rows == SEED_USERS
    assert len(window_filters(standins)) == 1  # the saved export was collected, not restarted


async def test_operator_sync_shows_progress_in_one_message_and_is_audited(
    standins: StandIns,
) -> None:
    settings = standins.settings(**sync_settings())
    operator = Person(standins.telegram, OPERATOR_ID)
    async with polling_bot(standins, settings) as app:
        operator.says("/sync full")
        final = await operator.reply(lambda message: "готова" in (message.text or ""))
        assert len(operator.texts()) == 1  # started, then edited: one message throughout
        # A step per window and per status export, then the end.
        assert final.edits == len(windows_until_today()) + 2 + 1
        assert f"прочитано {SEED_USERS}" in (final.text or "")
        operator.says("/sync oops")
        await operator.reply("/sync full")
        operator.says("/audit 1")
        await operator.reply("синхронизация справочника")
        assert await DirectoryRepository(app.services.database).count() == SEED_USERS


async def test_the_running_bot_syncs_on_schedule(standins: StandIns) -> None:
    # Never synced: the scheduled incremental sync (the whole range, then) is due at start.
    settings = standins.settings(**sync_settings(getcourse_incremental_sync_minutes=60))
    async with polling_bot(standins, settings) as app:

        async def synced() -> bool:
            return await app.services.sync.last_done(SyncKind.INCREMENTAL) is not None

        await eventually(synced)
        assert await DirectoryRepository(app.services.database).count() == SEED_USERS
    assert window_filters(standins) == windows_until_today()


async def test_concurrent_misses_share_one_export(standins: StandIns) -> None:
    getcourse = standins.getcourse
    settings = one_window_settings(standins, getcourse_coalesce_seconds=0.5)
    async with polling_bot(standins, settings) as app:
        await app.services.sync.run(SyncKind.FULL)
        starts_after_sync = len([r for r in getcourse.requests if r.endpoint == "users"])
        newcomers = [f"newcomer{n}@example.com" for n in range(5)]
        for number, email in enumerate(newcomers):
            getcourse.add_user(GetCourseUserRecord(id=187660000 + number, email=email))
        people = [Person(standins.telegram, 100000200 + n) for n in range(len(newcomers))]
        for person, email in zip(people, newcomers, strict=True):
            person.says(email)
        for person in people:
            await person.reply("Готово")
        # Alone, a miss is asked with the email filter.
        getcourse.add_user(GetCourseUserRecord(id=187669999, email="late@example.com"))
        late = Person(standins.telegram, 100000299)
        late.says("late@example.com")
        await late.reply("Готово")
    starts = [r.params for r in getcourse.requests if r.endpoint == "users"][starts_after_sync:]
    # The sync began today: the registrations since then hold everyone it could have missed.
    assert starts == [
        {"created_at[from]": date.today().isoformat(), "created_at[to]": after(date.today())},
        {"email": "late@example.com"},
    ]


async def test_a_person_whose_lookup_waits_is_told_and_answered_later(standins: StandIns) -> None:
    standins.getcourse.not_ready_polls = 1_000_000  # the export takes "minutes"
    settings = standins.settings(
        getcourse_coalesce_seconds=1.0,
        getcourse_queued_notice_seconds=0.1,
        getcourse_poll_max_interval=0.5,
    )
    ivan = Person(standins.telegram, IVAN)
    async with polling_bot(standins, settings):
        ivan.says("ivan.petrov@example.com")
        await ivan.reply("Сейчас")
        standins.getcourse.not_ready_polls = 0
        standins.getcourse.complete_exports()
        await ivan.reply("Готово")
    assert [text.split()[0] for text in ivan.texts()] == ["Проверяю", "Сейчас", "Готово!"]


async def test_sync_command_prints_each_step_and_says_how_it_ended(
    standins: StandIns, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = standins.settings(**sync_settings())
    assert await run_sync(settings, full=True) == 0
    lines = capsys.readouterr().out.splitlines()

    windows = windows_until_today()
    total_days = (date.today() - SINCE).days + 1
    first_start = date.fromisoformat(windows[0][0])
    first_read = len([u for u in standins.getcourse.users if u.created.date() >= first_start])
    assert lines[0] == (
        f"      registrations since {first_start} read "
        f"({(date.today() - first_start).days + 1}/{total_days} days): {first_read} users so far"
    )
    assert lines[len(windows) - 1] == (
        f"      registrations since {SINCE} read ({total_days}/{total_days} days): "
        f"{SEED_USERS} users so far"
    )
    assert lines[len(windows) :] == [
        "      banned users: asking GetCourse",
        "      deactivated users: asking GetCourse",
        f"OK    full sync: {SEED_USERS} users, 0 removed, 0 links to users gone from GetCourse, "
        "0 links to users newly banned or deactivated",
    ]


def window_plan(per_day: list[int], policy: SyncPolicy) -> list[int]:
    """How many users each window of a newest-first run holds, ``per_day[0]`` being today."""
    today = date.today()
    run_first = today - timedelta(days=len(per_day) - 1)
    first = max(run_first, today - timedelta(days=policy.window_days - 1))
    last, sizes = today, []
    while last >= run_first:
        held = [
            (today - timedelta(days=ago), count)
            for ago, count in enumerate(per_day)
            if first <= today - timedelta(days=ago) <= last and count
        ]
        users = sum(count for _, count in held)
        earliest = min((day for day, _ in held), default=None)
        sizes.append(users)
        first, last = (
            next_window_first(policy, first, last, users, run_first, earliest),
            first - timedelta(days=1),
        )
    return sizes


def test_window_plans_of_a_small_young_school_and_a_large_old_one() -> None:
    defaults = SyncPolicy()
    since_2012 = (date.today() - defaults.since).days + 1
    # 10,000 users over the last two years, nobody before: the newest 90 days, then the rest.
    young = [10_000 // 730 if day < 730 else 0 for day in range(since_2012)]
    assert len(window_plan(young, defaults)) == 2
    # A million over eight years: windows of about 50,000 (never twice that), and the empty
    # years before in one export.
    old = [1_000_000 // 2920 if day < 2920 else 0 for day in range(since_2012)]
    sizes = window_plan(old, defaults)
    assert 18 <= len(sizes) <= 24
    assert max(sizes) <= 2 * defaults.window_users
    assert sum(sizes) == sum(old)
    assert sizes[-1] == 0
    assert sizes[-2] > 0


def emails_asked(standins: StandIns) -> list[tuple[str, str]]:
    """(endpoint, email) of each Tech API lookup and users export, in the order they came."""
    return [
        (r.endpoint, r.params["email"])
        for r in standins.getcourse.requests
        if r.endpoint in ("tech_get_fields", "users")
    ]


def exported_after_tech(*emails: str) -> list[tuple[str, str]]:
    """``emails_asked`` of lookups the Tech API could not answer: each asked, then exported."""
    return [(endpoint, email) for email in emails for endpoint in ("tech_get_fields", "users")]

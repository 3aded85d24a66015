"""What operators see of the local GetCourse directory, end to end: the bot long-polls the
Telegram stand-in and exports from the GetCourse stand-in; an operator asks /health and /stats
as they would, and Prometheus scrapes /metrics."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from bot.app import App
from sandbox.getcourse import GetCourseUserRecord
from services.getcourse.directory_sync import SyncKind
from tests.conftest import OPERATOR_ID, Person, StandIns, eventually, free_port, polling_bot
from tests.operator_console import IVAN, plain
from tests.running import get, serving

SEED_USERS = 12  # sandbox/data/getcourse_users.json
SINCE = date(2023, 11, 1)  # the seed's first registration is 2023-11-30
WINDOW_DAYS = 200
SYNC = {
    "getcourse_sync_since": SINCE,
    "getcourse_sync_window_days": WINDOW_DAYS,
    "getcourse_sync_window_users": 0,  # fixed windows, so a test can name where one stopped
    "getcourse_sync_reserve": 0,
}
NEVER_SYNCED = (
    "⚠️ Справочник ни разу не синхронизирован: email проверяются напрямую в GetCourse. "
    "Заполнить: /sync full"
)


def shown(timestamp: float) -> str:
    """A moment as the operator console shows it."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def gauge(exposition: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


async def ask(operator: Person, command: str, title: str) -> list[str]:
    """The lines of the bot's answer to ``command``, which starts with ``title``."""
    operator.says(command)
    answer = await operator.reply(lambda message: (message.text or "").startswith(title))
    return plain(answer.text or "").splitlines()


async def sync(operator: Person, command: str) -> None:
    operator.says(command)
    await operator.reply("✅ Синхронизация справочника готова")


async def finished_at(app: App, kind: SyncKind) -> float:
    stamp = await app.services.sync.last_done(kind)
    assert stamp is not None
    return stamp


async def test_a_never_synced_bot_says_lookups_go_live(standins: StandIns) -> None:
    listen = f"127.0.0.1:{free_port()}"
    operator = Person(standins.telegram, OPERATOR_ID)
    async with serving(standins, standins.settings(health_listen=listen)):
        health = await ask(operator, "/health", "🩺")
        stats = await ask(operator, "/stats", "📊")
        scraped = (await get(listen, "/metrics")).text

    directory = health.index("Справочник GetCourse: пользователей 0")
    assert health[directory + 1] == NEVER_SYNCED
    assert health[directory - 1].startswith("Бюджет выгрузок GetCourse: использовано 0,")
    assert not [line for line in health if "синхронизац" in line.lower()]
    assert "Справочник GetCourse: пользователей 0" in stats
    assert gauge(scraped, "bot_getcourse_directory_users") == 0
    for kind in ("full", "incremental"):
        name = "bot_getcourse_directory_last_sync_timestamp_seconds"
        assert gauge(scraped, name, kind=kind) == 0


async def test_after_syncs_health_stats_and_metrics_show_the_directory(
    standins: StandIns,
) -> None:
    listen = f"127.0.0.1:{free_port()}"
    operator = Person(standins.telegram, OPERATOR_ID)
    async with serving(standins, standins.settings(health_listen=listen, **SYNC)) as app:
        await sync(operator, "/sync full")
        full_at = await finished_at(app, SyncKind.FULL)
        health = await ask(operator, "/health", "🩺")
        stats = await ask(operator, "/stats", "📊")
        after_full = (await get(listen, "/metrics")).text
        spent = standins.getcourse.export_requests_in_window()

        await sync(operator, "/sync")
        incremental_at = await finished_at(app, SyncKind.INCREMENTAL)
        health_later = await ask(operator, "/health", "🩺")
        after_both = (await get(listen, "/metrics")).text

    directory = health.index(f"Справочник GetCourse: пользователей {SEED_USERS}")
    assert health[directory - 1] == (
        f"Бюджет выгрузок GetCourse: использовано {spent}, осталось {60 - spent} из 60 (за 2 часа)"
    )
    assert health[directory + 1 : directory + 3] == [
        f"Последняя полная синхронизация: {shown(full_at)}, прочитано {SEED_USERS}",
        "Последняя синхронизация новых регистраций: не было",
    ]
    assert health[directory + 3] == "Настройки (без секретов):"  # nothing unfinished or running
    assert NEVER_SYNCED not in health
    assert f"Справочник GetCourse: пользователей {SEED_USERS}" in stats
    assert f"Бюджет выгрузок GetCourse: использовано {spent}, осталось {60 - spent} из 60" in (
        "\n".join(stats)
    )

    # The incremental sync reads from the day the full one began (today) on.
    reread = len([user for user in standins.getcourse.users if user.created.date() >= date.today()])
    later = health_later.index(f"Справочник GetCourse: пользователей {SEED_USERS}")
    assert health_later[later + 1 : later + 3] == [
        f"Последняя полная синхронизация: {shown(full_at)}, прочитано {SEED_USERS}",
        f"Последняя синхронизация новых регистраций: {shown(incremental_at)}, прочитано {reread}",
    ]

    timestamps = "bot_getcourse_directory_last_sync_timestamp_seconds"
    assert gauge(after_full, "bot_getcourse_directory_users") == SEED_USERS
    assert gauge(after_full, timestamps, kind="full") == full_at
    assert gauge(after_full, timestamps, kind="incremental") == 0
    assert gauge(after_full, "bot_getcourse_export_requests") == spent
    assert gauge(after_both, timestamps, kind="full") == full_at
    assert gauge(after_both, timestamps, kind="incremental") == incremental_at


async def test_a_sync_stopped_early_shows_where_it_stopped(standins: StandIns) -> None:
    # A budget of 10 with 6 in reserve leaves room for two windows of start + poll.
    settings = standins.settings(
        **{**SYNC, "getcourse_export_budget": 10, "getcourse_sync_reserve": 6}
    )
    recent = date.today() - timedelta(days=WINDOW_DAYS + 50)  # in the second window
    standins.getcourse.add_user(
        GetCourseUserRecord(
            id=187690000, email="recent@example.com", created_at=f"{recent} 10:00:00"
        )
    )
    operator = Person(standins.telegram, OPERATOR_ID)
    async with polling_bot(standins, settings):
        operator.says("/sync full")
        await operator.reply("⏸ Синхронизация приостановлена")
        health = await ask(operator, "/health", "🩺")

    # Newest first: the two windows read the registrations after this day.
    stopped_at = date.today() - timedelta(days=2 * WINDOW_DAYS)
    read = len([user for user in standins.getcourse.users if user.created.date() > stopped_at])
    assert 0 < read < len(standins.getcourse.users)
    directory = health.index(f"Справочник GetCourse: пользователей {read}")
    assert health[directory + 1 : directory + 4] == [
        NEVER_SYNCED,
        f"⏳ Не завершена полная синхронизация: прочитаны регистрации после {stopped_at} "
        f"(всего с {SINCE} по {date.today()}), прочитано {read}",
        "⏸ Сейчас не идёт: остановлена досрочно (лимит выгрузок, сбой GetCourse или перезапуск) "
        "и продолжится с того же места при следующей плановой синхронизации или по /sync "
        "(полная — по /sync full)",
    ]


async def test_a_sync_stopped_at_its_status_check_says_so(standins: StandIns) -> None:
    # One window and the "banned" check (start + poll each) fit above the reserve; the
    # "deactivated" check does not.
    settings = standins.settings(
        **{
            **SYNC,
            "getcourse_sync_window_days": 5000,
            "getcourse_export_budget": 10,
            "getcourse_sync_reserve": 6,
        }
    )
    operator = Person(standins.telegram, OPERATOR_ID)
    async with polling_bot(standins, settings):
        operator.says("/sync full")
        await operator.reply("⏸ Синхронизация приостановлена")
        health = await ask(operator, "/health", "🩺")

    directory = health.index(f"Справочник GetCourse: пользователей {SEED_USERS}")
    assert health[directory + 2] == (
        f"⏳ Не завершена полная синхронизация: все регистрации прочитаны ({SEED_USERS}), "
        "дошла до проверки статуса «отключён»"
    )


async def test_a_sync_going_on_shows_as_running(standins: StandIns) -> None:
    getcourse = standins.getcourse
    getcourse.not_ready_polls = 10**6  # the export stays "building" until released
    settings = standins.settings(
        getcourse_sync_since=SINCE,
        getcourse_sync_window_days=5000,  # one window
        getcourse_poll_first_delay=0.2,
        getcourse_poll_max_interval=0.2,
    )
    operator = Person(standins.telegram, OPERATOR_ID)
    async with polling_bot(standins, settings):
        operator.says("/sync full")
        await eventually(lambda: getcourse.exports_started() == 1)
        health = await ask(operator, "/health", "🩺")
        getcourse.not_ready_polls = 0
        # The sync's own message, written before /health was asked, ends edited to "done".
        await standins.telegram.wait_for_message(
            OPERATOR_ID, lambda message: "готова" in (message.text or "")
        )

    directory = health.index("Справочник GetCourse: пользователей 0")
    assert health[directory + 2 : directory + 4] == [
        f"⏳ Не завершена полная синхронизация: прочитаны регистрации после {date.today()} "
        f"(всего с {SINCE} по {date.today()}), прочитано 0",
        "🔄 Синхронизация справочника идёт сейчас",
    ]


async def test_a_budget_pause_is_shown_next_to_the_budget(standins: StandIns) -> None:
    operator, ivan = Person(standins.telegram, OPERATOR_ID), Person(standins.telegram, IVAN)
    async with polling_bot(standins) as app:
        standins.getcourse.fail_next("users", error_code=903)
        ivan.says("ivan.petrov@example.com")
        await ivan.reply("Сейчас не получается проверить")
        paused_until = await app.services.budget.paused_until()
        assert paused_until is not None
        health = await ask(operator, "/health", "🩺")

    budget = next(i for i, line in enumerate(health) if line.startswith("Бюджет выгрузок"))
    assert health[budget + 1] == (
        f"⛔ Выгрузки приостановлены до {shown(paused_until)}: "
        "GetCourse сообщил, что лимит запросов исчерпан (903)"
    )


async def test_the_directory_in_english(standins: StandIns) -> None:
    operator = Person(standins.telegram, OPERATOR_ID)
    async with polling_bot(standins, standins.settings(bot_language="en", **SYNC)) as app:
        health_before = await ask(operator, "/health", "🩺")
        await app.services.sync.run(SyncKind.FULL)
        full_at = await finished_at(app, SyncKind.FULL)
        health = await ask(operator, "/health", "🩺")
        stats = await ask(operator, "/stats", "📊")

    assert (
        "⚠️ The directory has never been synced: emails are checked live on GetCourse. "
        "To fill it: /sync full"
    ) in health_before
    directory = health.index(f"GetCourse directory: {SEED_USERS} users")
    assert health[directory + 1 : directory + 3] == [
        f"Last full sync: {shown(full_at)}, {SEED_USERS} users read",
        "Last sync of new registrations: none",
    ]
    assert f"GetCourse directory: {SEED_USERS} users" in stats

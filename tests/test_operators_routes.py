"""The operator console through the real Dispatcher: every command as an operator and as a
non-operator, the buttons, and what the database and Salebot hold afterwards. GetCourse and
Salebot are their stand-ins over HTTP; the outbox runs when a test says so."""

from __future__ import annotations

import csv
import io
import struct
from collections.abc import AsyncIterator
from datetime import datetime

import pytest

from handlers.operators import OPERATOR_COMMANDS
from handlers.texts import Texts
from sandbox.getcourse import GetCourseUserRecord
from sandbox.server import Fault
from sandbox.telegram import SentMessage
from tests.conftest import GETCOURSE_KEY, OPERATOR_ID, SALEBOT_KEY, TOKEN, StandIns
from tests.operator_console import (
    IVAN,
    MARIA,
    NEWCOMER,
    OPERATOR_CHAT,
    STRANGER,
    Console,
    console_for,
    plain,
)

RU = Texts.load("ru")


def said(key: str, **values: object) -> str:
    """A Russian text as the person reads it."""
    return plain(RU.render(key, **values))


SECOND_OPERATOR = 900000002
# Failed writes wait an hour, so "due now" is something only an operator can cause.
SLOW_RETRIES = {"salebot_retry_first_delay": 3600, "salebot_retry_max_delay": 3600}


@pytest.fixture
async def console(standins: StandIns) -> AsyncIterator[Console]:
    async for value in console_for(standins):
        yield value


@pytest.fixture
async def slow_console(standins: StandIns) -> AsyncIterator[Console]:
    async for value in console_for(standins, **SLOW_RETRIES):
        yield value


# -- access control ----------------------------------------------------------------------------

EVERY_OPERATOR_COMMAND = [
    "/help",
    f"/find {IVAN}",
    "/find ivan.petrov@example.com",
    f"/link {NEWCOMER} anna@example.org",
    f"/unlink {IVAN}",
    f"/resync {IVAN}",
    "/resync failed",
    "/queue",
    "/stats",
    "/export",
    "/audit 5",
    "/health",
    "/sync full",
    f"/erase {IVAN}",
]


def test_every_operator_command_is_tried_here() -> None:
    tried = {command.split()[0].removeprefix("/") for command in EVERY_OPERATOR_COMMAND}
    assert tried == set(OPERATOR_COMMANDS)


@pytest.mark.parametrize("command", EVERY_OPERATOR_COMMAND)
async def test_a_non_operator_gets_exactly_the_unknown_command_answer(
    console: Console, command: str
) -> None:
    await console.link_student(IVAN, "ivan.petrov@example.com")
    outbox_before = await console.rows("SELECT * FROM outbox")
    lookups_before = len(console.standins.getcourse.requests)

    await console.say("/no_such_command", user=STRANGER)
    await console.say(command, user=STRANGER)

    unknown, answer = console.replies(STRANGER)
    assert answer == unknown == said("unknown_command")
    assert await console.services.links.current_link(IVAN) is not None
    assert await console.services.links.current_link(NEWCOMER) is None
    assert await console.rows("SELECT * FROM outbox") == outbox_before
    assert await console.rows("SELECT * FROM operator_audit") == []
    assert len(console.standins.getcourse.requests) == lookups_before
    telegram = console.standins.telegram
    assert telegram.calls_of("sendDocument") == telegram.calls_of("sendPhoto") == []


@pytest.mark.parametrize("command", EVERY_OPERATOR_COMMAND)
async def test_in_a_group_a_non_operator_command_is_ignored_like_any_other(
    console: Console, command: str
) -> None:
    await console.say("/no_such_command", user=STRANGER, chat_id=OPERATOR_CHAT)
    await console.say(command, user=STRANGER, chat_id=OPERATOR_CHAT)
    assert console.messages(OPERATOR_CHAT) == []


async def test_an_operator_is_a_student_too(console: Console) -> None:
    await console.say("/start")
    assert "email" in console.replies()[-1]
    await console.say("/no_such_command")
    assert console.replies()[-1] == said("unknown_command")


async def test_help_lists_every_operator_command(console: Console) -> None:
    await console.say("/help")
    help_text = console.replies()[-1]
    for name in OPERATOR_COMMANDS:
        assert f"/{name}" in help_text


CARD_BUTTONS = ("Записать заново", "Отвязать", "История")


async def linked_ivans_card(console: Console) -> SentMessage:
    """Ivan linked, and the card an operator's /find shows of him."""
    await console.link_student(IVAN, "ivan.petrov@example.com")
    await console.say(f"/find {IVAN}")
    return console.last()


async def test_operator_buttons_pressed_by_a_non_operator_change_nothing(
    console: Console,
) -> None:
    card = await linked_ivans_card(console)
    outbox_before = await console.rows("SELECT * FROM outbox")

    for label in CARD_BUTTONS:
        query_id = await console.press(card, label, user=STRANGER)
        assert console.standins.telegram.answered_callbacks[query_id].text is None

    assert await console.services.links.current_link(IVAN) is not None
    assert await console.rows("SELECT * FROM outbox") == outbox_before
    assert await console.rows("SELECT * FROM operator_audit") == []
    assert console.messages()[-1] == card  # nothing new was sent


# -- /find ---------------------------------------------------------------------------------------


async def test_find_by_every_key_shows_the_card(console: Console) -> None:
    await console.link_student(IVAN, "ivan.petrov@example.com")
    queries = [
        "ivan.petrov@example.com",
        " IVAN.Petrov@Example.com ",
        str(IVAN),
        f"@student{IVAN}",
        "187654321",  # GetCourse ID
        "836058541",  # Salebot client ID
    ]
    for query in queries:
        await console.say(f"/find {query}")
        card, text = console.last(), console.text()
        assert f"Telegram {IVAN}" in text, query
        assert f"@student{IVAN}" in text
        assert "Email: ivan.petrov@example.com" in text
        assert "GetCourse: ID 187654321 · Иван Петров" in text
        assert "Salebot: клиент 836058541" in text
        assert "сам человек" in text
        assert "Salebot, запись переменных: ✅ выполнена" in text
        assert [text for text, _ in card.buttons()] == [
            "🔄 Записать заново",
            "✂️ Отвязать",
            "🕓 История",
        ]


async def test_find_in_a_group_masks_the_email(console: Console) -> None:
    await console.link_student(IVAN, "ivan.petrov@example.com")
    await console.say(f"/find {IVAN}", chat_id=OPERATOR_CHAT)
    card = console.text(OPERATOR_CHAT)
    assert "Email: i***@example.com" in card
    assert "ivan.petrov" not in card


async def test_find_shows_why_a_write_has_not_landed(slow_console: Console) -> None:
    console = slow_console
    console.standins.salebot.set_down(True)
    await console.link_student(IVAN, "ivan.petrov@example.com")
    await console.link_student(NEWCOMER, "anna@example.org")

    await console.say(f"/find {IVAN}")
    card = console.text()
    assert "Salebot: клиент ещё не найден" in card
    assert "⚠️ не удалась (Salebot недоступен)" in card
    assert "HTTP 503" in card
    assert "попыток: 1" in card

    console.standins.salebot.set_down(False)
    await console.say("/resync failed")
    await console.deliver()
    await console.say(f"/find {NEWCOMER}")
    card = console.text()
    assert "(человек ещё не запускал бота в Salebot)" in card
    assert "попыток: 2" in card


async def test_find_someone_who_wrote_but_never_linked(console: Console) -> None:
    await console.say("hello?", user=STRANGER, username="curious_cat")
    await console.say("hello again", user=STRANGER, username="Curious_Dog")

    await console.say("/find @curious_dog")
    card, text = console.last(), console.text()
    assert f"Telegram {STRANGER}" in text
    assert "@Curious_Dog" in text
    assert "Не привязан." in text
    assert [text for text, _ in card.buttons()] == ["🕓 История"]

    await console.say("/find @curious_cat")  # the old username no longer points to them
    assert console.replies()[-1] == said("find_nothing", query="@curious_cat")


async def test_find_without_a_match_or_with_garbage(console: Console) -> None:
    await console.say("/find nobody@example.com")
    assert console.replies()[-1] == said("find_nothing", query="nobody@example.com")
    await console.say("/find")
    assert console.replies()[-1] == said("find_usage")
    await console.say("/find <b>%%%</b>")
    assert console.replies()[-1] == said("find_usage")


# -- /link ---------------------------------------------------------------------------------------


async def test_link_is_looked_up_then_confirmed_and_audited(console: Console) -> None:
    await console.say(f"/link {NEWCOMER} Anna@Example.org", username="olga_support")
    checking, proposal = console.replies()[-2:]
    assert checking == said("link_checking", email="anna@example.org")
    assert "GetCourse: найден пользователь 187654322 · Анна Смирнова" in proposal
    assert f"Telegram {NEWCOMER} сейчас не привязан." in proposal
    assert await console.services.links.current_link(NEWCOMER) is None  # not before confirming

    await console.press(console.last(), "Привязать")

    done = console.last()
    assert plain(done.text or "") == said(
        "link_done", telegram_id=NEWCOMER, email="anna@example.org", gc_user_id="187654322"
    )
    assert done.buttons() == []
    link = await console.services.links.current_link(NEWCOMER)
    assert link is not None
    assert (link.email, link.gc_user_id, link.linked_by) == (
        "anna@example.org",
        "187654322",
        OPERATOR_ID,
    )
    [write] = await console.rows("SELECT * FROM outbox WHERE telegram_id = ?", NEWCOMER)
    assert write["state"] == "pending"
    [entry] = await console.rows("SELECT * FROM operator_audit")
    assert (entry["operator_id"], entry["action"], entry["target"]) == (
        OPERATOR_ID,
        "link",
        str(NEWCOMER),
    )
    assert entry["before"] == "{}"
    assert '"gc_user_id": "187654322"' in entry["after"]

    await console.say(f"/find {NEWCOMER}")
    assert f"оператор {OPERATOR_ID} (@olga_support)" in console.text()


async def test_link_warns_when_someone_else_holds_the_email(console: Console) -> None:
    await console.link_student(IVAN, "ivan.petrov@example.com")
    await console.say(f"/link {NEWCOMER} ivan.petrov@example.com")
    proposal = console.text()
    assert f"уже привязан к Telegram {IVAN}" in proposal


async def test_an_old_link_button_does_not_replace_a_newer_link(console: Console) -> None:
    await console.say(f"/link {IVAN} anna@example.org")
    proposal = console.last()
    assert f"Telegram {IVAN} сейчас не привязан." in plain(proposal.text or "")
    await console.link_student(IVAN, "ivan.petrov@example.com")  # Ivan links himself meanwhile

    await console.press(proposal, "Привязать")

    assert console.text() == said("link_stale", telegram_id=IVAN)
    link = await console.services.links.current_link(IVAN)
    assert link is not None
    assert link.email == "ivan.petrov@example.com"
    assert await console.rows("SELECT * FROM operator_audit") == []


async def test_link_cancelled_changes_nothing(console: Console) -> None:
    await console.say(f"/link {NEWCOMER} anna@example.org")
    await console.press(console.last(), "Отмена")
    assert console.text() == said("link_cancelled")
    assert await console.services.links.current_link(NEWCOMER) is None
    assert await console.rows("SELECT * FROM operator_audit") == []


async def test_a_button_of_a_message_too_old_says_so_and_changes_nothing(
    console: Console,
) -> None:
    card = await linked_ivans_card(console)

    for label in CARD_BUTTONS:
        query_id = await console.press(card, label, too_old=True)
        answer = console.standins.telegram.answered_callbacks[query_id]
        assert (answer.text, answer.show_alert) == (said("button_expired"), True)

    assert await console.services.links.current_link(IVAN) is not None
    assert console.messages()[-1] == card  # nothing new was sent or edited


async def test_link_is_confirmed_only_by_the_operator_who_asked(standins: StandIns) -> None:
    operators = f"{OPERATOR_ID},{SECOND_OPERATOR}"
    async for console in console_for(standins, operator_ids=operators):
        await console.say(f"/link {NEWCOMER} anna@example.org", chat_id=OPERATOR_CHAT)
        proposal = console.last(OPERATOR_CHAT)
        query_id = await console.press(proposal, "Привязать", user=SECOND_OPERATOR)
        answer = standins.telegram.answered_callbacks[query_id]
        assert (answer.text, answer.show_alert) == (said("link_expired"), True)
        assert await console.services.links.current_link(NEWCOMER) is None

        await console.press(proposal, "Привязать", user=OPERATOR_ID)
        assert await console.services.links.current_link(NEWCOMER) is not None


async def test_link_not_found_bad_input_and_getcourse_trouble(console: Console) -> None:
    await console.say(f"/link {NEWCOMER} nobody@example.com")
    assert console.replies()[-1] == said("link_not_found", email="nobody@example.com")
    await console.say("/link anna@example.org")
    assert console.replies()[-1] == said("link_usage")
    await console.say(f"/link {NEWCOMER} not-an-email")
    assert console.replies()[-1] == said("link_usage")

    console.standins.getcourse.faults.add("users", Fault(status=500))
    await console.say(f"/link {NEWCOMER} anna@example.org")
    assert "Не получилось проверить email на GetCourse" in console.replies()[-1]
    assert "HTTP 500" in console.replies()[-1]
    assert await console.services.links.current_link(NEWCOMER) is None


# -- /unlink -------------------------------------------------------------------------------------


async def test_unlink_asks_then_clears_the_salebot_variables(console: Console) -> None:
    await console.link_student(IVAN, "ivan.petrov@example.com")
    assert console.salebot_variables(IVAN)["gc_user_id"] == "187654321"

    await console.say(f"/unlink {IVAN}")
    question = console.last()
    assert plain(question.text or "").startswith(
        f"Отвязать Telegram {IVAN} от ivan.petrov@example.com (GetCourse 187654321)?"
    )
    assert said("unlink_clears") in plain(question.text or "")
    assert await console.services.links.current_link(IVAN) is not None

    await console.press(question, "Отвязать")

    assert console.text() == said(
        "unlink_done_cleared", telegram_id=IVAN, email="ivan.petrov@example.com"
    )
    assert console.last().buttons() == []
    assert await console.services.links.current_link(IVAN) is None
    assert await console.deliver() == 1
    variables = console.salebot_variables(IVAN)
    assert (variables["email"], variables["gc_user_id"], variables["telegram_id"]) == ("", "", "")
    assert variables["tg_username"] == "@ivan_petrov"  # not ours: left alone
    [entry] = await console.rows("SELECT * FROM operator_audit")
    assert (entry["action"], entry["target"]) == ("unlink", str(IVAN))
    assert '"email": "ivan.petrov@example.com"' in entry["before"]
    assert '"salebot_client_id": "836058541"' in entry["before"]
    assert entry["after"] == '{"salebot_variables": "cleared"}'


async def test_an_old_unlink_button_does_not_remove_a_newer_link(console: Console) -> None:
    await console.link_student(IVAN, "ivan.petrov@example.com")
    await console.say(f"/unlink {IVAN}")
    old_question = console.last()
    await console.say("/email", user=IVAN)  # Ivan moves his link to another address
    await console.say("anna@example.org", user=IVAN)
    assert "Готово" in console.replies(IVAN)[-1]

    await console.press(old_question, "Отвязать")

    link = await console.services.links.current_link(IVAN)
    assert link is not None
    assert link.email == "anna@example.org"
    assert said("unlink_stale", telegram_id=IVAN) in console.replies()
    assert await console.rows("SELECT * FROM operator_audit") == []
    new_question = console.last()  # asked again, about the link as it is now
    assert "anna@example.org" in plain(new_question.text or "")
    await console.press(new_question, "Отвязать")
    assert await console.services.links.current_link(IVAN) is None


async def test_unlink_cancelled_keeps_the_link(console: Console) -> None:
    await console.link_student(IVAN, "ivan.petrov@example.com")
    await console.say(f"/unlink {IVAN}")
    await console.press(console.last(), "Отмена")
    assert console.text() == said("unlink_cancelled")
    assert await console.services.links.current_link(IVAN) is not None
    assert await console.rows("SELECT * FROM operator_audit") == []


async def test_unlink_can_keep_the_salebot_variables(standins: StandIns) -> None:
    async for console in console_for(
        standins, salebot_keep_variables_on_unlink=True, **SLOW_RETRIES
    ):
        await console.link_student(IVAN, "ivan.petrov@example.com")
        standins.salebot.set_down(True)
        await console.say(f"/resync {IVAN}")  # a write that will still be pending
        await console.deliver()

        await console.say(f"/unlink {IVAN}")
        assert said("unlink_keeps") in console.text()
        await console.press(console.last(), "Отвязать")
        assert "Переменные в Salebot оставлены" in console.text()

        standins.salebot.set_down(False)
        await console.say("/resync failed")  # the withdrawn write is not revived
        assert await console.deliver() == 0
        assert console.salebot_variables(IVAN)["email"] == "ivan.petrov@example.com"


async def test_unlink_of_someone_not_linked_and_bad_input(console: Console) -> None:
    await console.say(f"/unlink {NEWCOMER}")
    assert console.replies()[-1] == said("not_linked", telegram_id=NEWCOMER)
    await console.say("/unlink ivan")
    assert console.replies()[-1] == said("unlink_usage")


# -- /resync and /queue --------------------------------------------------------------------------


async def test_resync_writes_the_link_again(console: Console) -> None:
    await console.link_student(IVAN, "ivan.petrov@example.com")
    client = console.standins.salebot.client_by_platform_id(IVAN)
    assert client is not None
    client.client_variables["gc_user_id"] = "edited by hand in Salebot"

    await console.say(f"/resync {IVAN}")
    assert console.replies()[-1] == said("resync_done", telegram_id=IVAN)
    assert await console.deliver() == 1
    assert console.salebot_variables(IVAN)["gc_user_id"] == "187654321"
    [entry] = await console.rows("SELECT * FROM operator_audit")
    assert (entry["action"], entry["target"]) == ("resync", str(IVAN))

    await console.say(f"/resync {NEWCOMER}")
    assert console.replies()[-1] == said("not_linked", telegram_id=NEWCOMER)
    await console.say("/resync everything")
    assert console.replies()[-1] == said("resync_usage")


async def test_resync_failed_runs_waiting_and_given_up_writes_now(slow_console: Console) -> None:
    console, salebot = slow_console, slow_console.standins.salebot
    salebot.set_down(True)
    await console.link_student(IVAN, "ivan.petrov@example.com")  # retried in an hour
    salebot.set_down(False)
    salebot.reject_key(True)
    await console.link_student(MARIA, "anna@example.org")  # rejected: given up
    salebot.reject_key(False)
    assert await console.deliver() == 0
    states = await console.rows("SELECT telegram_id, state FROM outbox ORDER BY id")
    assert states == [
        {"telegram_id": IVAN, "state": "pending"},
        {"telegram_id": MARIA, "state": "failed"},
    ]

    await console.say("/resync failed")

    assert console.replies()[-1] == said("retry_all_done", count=2)
    assert await console.deliver() == 2
    assert console.salebot_variables(IVAN)["email"] == "ivan.petrov@example.com"
    assert console.salebot_variables(MARIA)["email"] == "anna@example.org"
    [entry] = await console.rows("SELECT * FROM operator_audit")
    assert (entry["action"], entry["after"]) == ("retry_all", '{"due_now": "2"}')


async def test_queue_counts_by_cause_and_retries_with_its_button(slow_console: Console) -> None:
    console, salebot = slow_console, slow_console.standins.salebot
    await console.link_student(NEWCOMER, "elena.popova@example.org")  # no Salebot client
    salebot.set_down(True)
    await console.link_student(IVAN, "ivan.petrov@example.com")
    salebot.set_down(False)
    salebot.reject_key(True)
    await console.link_student(MARIA, "anna@example.org")
    salebot.reject_key(False)

    await console.say("/queue")

    report = console.last()
    lines = plain(report.text or "").splitlines()
    assert lines[0] == "📬 Записи в Salebot, ожидающие выполнения: 3"
    assert "  • человек ещё не запускал бота в Salebot — 1" in lines
    assert "  • Salebot недоступен — 1" in lines
    assert lines.index("Остановлены (нужно вмешательство):") < lines.index(
        "  • Salebot отклонил запрос — 1"
    )
    oldest = [line for line in lines if line.startswith("  • Telegram")]
    assert [line.split(" — ")[0] for line in oldest] == [
        f"  • Telegram {NEWCOMER}",
        f"  • Telegram {IVAN}",
        f"  • Telegram {MARIA}",
    ]

    query_id = await console.press(report, "Повторить все сейчас")

    retried = said("retry_all_done", count=3)
    assert console.standins.telegram.answered_callbacks[query_id].text == retried
    assert console.replies()[-1] == retried
    assert await console.deliver() == 2  # the newcomer still has no Salebot client
    await console.say("/queue")
    assert "Записи в Salebot, ожидающие выполнения: 1" in console.replies()[-1]


async def test_queue_when_everything_is_written(console: Console) -> None:
    await console.link_student(IVAN, "ivan.petrov@example.com")
    await console.say("/queue")
    assert console.text() == said("queue_empty")
    assert console.last().buttons() == []


# -- card buttons --------------------------------------------------------------------------------


async def test_card_buttons_resync_show_history_and_unlink(console: Console) -> None:
    await console.link_student(IVAN, "ivan.petrov@example.com")
    await console.say(f"/find {IVAN}")
    card = console.last()

    await console.press(card, "Записать заново")
    assert console.replies()[-1] == said("resync_done", telegram_id=IVAN)
    assert await console.deliver() == 1

    await console.press(card, "История")
    history = console.text().splitlines()
    assert history[0] == f"🕓 История Telegram {IVAN}"
    assert history[1].endswith("— привязан (сам)")
    writes = [line for line in history if "Salebot, запись переменных: ✅ выполнена" in line]
    assert len(writes) == 2

    await console.press(card, "Отвязать")
    question = console.last()
    assert plain(question.text or "").startswith(f"Отвязать Telegram {IVAN}")
    await console.press(question, "Отвязать")
    assert await console.services.links.current_link(IVAN) is None


# -- /stats --------------------------------------------------------------------------------------


async def test_stats_counts_what_happened_and_draws_the_chart(console: Console) -> None:
    await console.link_student(IVAN, "ivan.petrov@example.com")
    await console.say("/email", user=IVAN)
    await console.link_student(IVAN, "anna@example.org")  # changed
    await console.link_student(MARIA, "maria.sidorova@example.com")
    await console.say("nobody@example.com", user=STRANGER)  # not found
    await console.say("anna@example.org", user=NEWCOMER)  # conflict: Ivan holds it
    await console.say(f"/unlink {MARIA}")
    await console.press(console.last(), "Отвязать")

    await console.say("/stats")

    text, chart = console.messages()[-2:]
    lines = plain(text.text or "").splitlines()
    assert "Привязано сейчас: 1" in lines
    assert "Новых привязок: 2 / 2 / 2" in lines
    assert "Смен email: 1 / 1 / 1" in lines
    assert "Отвязок: 1 / 1 / 1" in lines
    assert "Email не найден на GetCourse: 1 / 1 / 1" in lines
    assert "Конфликтов: 1 / 1 / 1" in lines
    assert "Записи в Salebot: ждут 1 (из них с ошибкой 0), остановлены 0" in lines
    spent = console.standins.getcourse.export_requests_in_window()
    assert spent > 0
    assert f"Бюджет выгрузок GetCourse: использовано {spent}, осталось {60 - spent} из 60" in (
        plain(text.text or "")
    )
    assert chart.caption == said("chart_caption")
    [photo_call] = console.standins.telegram.calls_of("sendPhoto")
    assert photo_call.params["chat_id"] == OPERATOR_ID
    [png] = [
        f.content for f in console.standins.telegram.files.values() if f.file_name.endswith(".png")
    ]
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (900, 380)


# -- /export -------------------------------------------------------------------------------------


async def test_export_is_a_csv_of_every_link(console: Console) -> None:
    console.standins.getcourse.add_user(
        GetCourseUserRecord(id=187659999, email="mallory@example.com", first_name="=1+1")
    )
    await console.link_student(IVAN, "ivan.petrov@example.com")
    await console.say(f"/link {NEWCOMER} mallory@example.com")
    await console.press(console.last(), "Привязать")

    await console.say("/export")

    document = console.last()
    assert document.document is not None
    assert document.caption == said("export_caption", rows=2)
    assert document.document["file_name"].endswith(".csv")
    content = console.standins.telegram.files[document.document["file_id"]].content
    assert content.startswith(b"\xef\xbb\xbf")  # the BOM that makes Excel read UTF-8
    rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig")), delimiter=";"))
    assert [row["telegram_id"] for row in rows] == [str(IVAN), str(NEWCOMER)]
    ivan, newcomer = rows
    assert ivan["email"] == "ivan.petrov@example.com"
    assert ivan["gc_user_id"] == "187654321"
    assert ivan["gc_name"] == "Иван Петров"
    assert ivan["telegram_username"] == f"student{IVAN}"
    assert ivan["salebot_client_id"] == "836058541"
    assert ivan["salebot_write"] == "delivered"
    assert ivan["linked_by_operator"] == ""
    assert datetime.fromisoformat(ivan["linked_at"]).utcoffset() is not None
    assert datetime.fromisoformat(ivan["salebot_write_at"]) >= datetime.fromisoformat(
        ivan["linked_at"]
    )
    assert newcomer["linked_by_operator"] == str(OPERATOR_ID)
    assert newcomer["salebot_write"] == "pending"
    assert newcomer["gc_name"] == "'=1+1"  # a formula is not run by the spreadsheet
    entries = await console.rows("SELECT action, after FROM operator_audit ORDER BY id")
    assert entries[-1] == {"action": "export", "after": '{"rows": "2"}'}


async def test_export_is_refused_in_a_group_chat(console: Console) -> None:
    await console.link_student(IVAN, "ivan.petrov@example.com")
    await console.say("/export", chat_id=OPERATOR_CHAT)
    assert console.replies(OPERATOR_CHAT) == [said("export_private_only")]
    assert console.standins.telegram.calls_of("sendDocument") == []


async def test_export_in_english_is_comma_separated(standins: StandIns) -> None:
    async for console in console_for(standins, bot_language="en"):
        await console.say("/export")
        document = console.last()
        assert document.document is not None
        content = standins.telegram.files[document.document["file_id"]].content
        header = content.decode("utf-8-sig").splitlines()[0]
        assert header.startswith("telegram_id,telegram_username,telegram_first_name,email,")


# -- /audit and /health --------------------------------------------------------------------------


async def test_audit_lists_the_latest_operator_actions(console: Console) -> None:
    await console.link_student(IVAN, "ivan.petrov@example.com")
    await console.say(f"/resync {IVAN}", username="olga_support")
    await console.say("/resync failed")
    await console.say(f"/unlink {IVAN}")
    await console.press(console.last(), "Отвязать")

    await console.say("/audit 2")
    lines = console.text().splitlines()
    assert lines[0] == "🧾 Последние действия операторов: 2"
    assert lines[1].endswith(f"· {OPERATOR_ID} (@olga_support) · отвязка · {IVAN}")
    assert lines[2] == (
        "    email=ivan.petrov@example.com, gc_user_id=187654321, salebot_client_id=836058541"
        " → salebot_variables=cleared"
    )
    assert "повтор всех записей · salebot_writes" in lines[3]

    await console.say("/audit", chat_id=OPERATOR_CHAT)
    group = console.text(OPERATOR_CHAT)
    assert "Последние действия операторов: 3" in group
    assert "email=i***@example.com" in group
    assert "ivan.petrov" not in group

    await console.say("/audit many")
    assert console.replies()[-1] == said("audit_usage", limit=20)


async def test_audit_when_nothing_happened(console: Console) -> None:
    await console.say("/audit")
    assert console.replies()[-1] == said("audit_empty")


async def test_health_shows_state_without_secrets(console: Console) -> None:
    await console.link_student(IVAN, "ivan.petrov@example.com")
    console.standins.salebot.set_down(True)
    await console.say(f"/resync {IVAN}")
    await console.deliver()

    await console.say("/health")

    health = console.last()
    text = plain(health.text or "")
    lines = text.splitlines()
    assert lines[1].startswith("Версия 0.1.0, режим polling, работает с 20")
    assert lines[2].startswith("База данных: ")
    assert lines[3].startswith("Записи в Salebot: ждут 1, остановлены 0, самая старая с 20")
    assert lines[4].startswith("GetCourse: последний успешный вызов 20")
    assert lines[4].endswith("последняя ошибка не было (—)")
    assert lines[5].startswith("Salebot: последний успешный вызов 20")
    assert lines[5].endswith("(unavailable)")
    assert "Бюджет выгрузок GetCourse: использовано " in lines[6]
    assert f"  OPERATOR_IDS = {OPERATOR_ID}" in lines
    assert "  SALEBOT_BOT_USERNAME = school_funnel_bot" in lines
    assert "  SALEBOT_KEEP_VARIABLES_ON_UNLINK = False" in lines
    raw = health.params["text"]
    for secret in (TOKEN, GETCOURSE_KEY, SALEBOT_KEY):
        assert secret not in raw
    for name in ("BOT_TOKEN", "GETCOURSE_API_KEY", "SALEBOT_API_KEY", "WEBHOOK_SECRET"):
        assert name not in raw  # not even by name when unset

"""End to end over loopback HTTP: the bot polls the Telegram stand-in and talks to the
GetCourse and Salebot stand-ins, as it would in production."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.app import App
from sandbox.getcourse import GetCourseStandIn
from sandbox.server import Fault
from tests.conftest import FUNNEL_BOT, Person, StandIns, eventually, polling_bot

IVAN = 100000001  # has a Salebot client in the seed data
MARIA = 100000002
NEWCOMER = 100000099  # has not started the Salebot funnel bot yet


async def salebot_holds(standins: StandIns, telegram_id: int, expected: dict[str, str]) -> None:
    async def delivered() -> bool:
        client = standins.salebot.client_by_platform_id(telegram_id, FUNNEL_BOT)
        if client is None:
            return False
        variables = standins.salebot.client_variables(client.id)
        return all(variables.get(name) == value for name, value in expected.items())

    await eventually(delivered)


async def test_student_links_email_end_to_end(standins: StandIns, app: App) -> None:
    ivan = Person(standins.telegram, IVAN)
    ivan.says("/start")
    greeting = await ivan.reply()
    assert "email" in greeting.text.lower()
    assert "GetCourse" in greeting.text

    ivan.says("  Ivan.Petrov@Example.COM ")
    checking = await ivan.reply()
    assert "Проверяю" in checking.text
    assert "ivan.petrov@example.com" in checking.text
    linked = await ivan.reply()
    assert "Готово" in linked.text

    await salebot_holds(
        standins,
        IVAN,
        {"email": "ivan.petrov@example.com", "gc_user_id": "187654321", "telegram_id": str(IVAN)},
    )
    link = await app.services.links.current_link(IVAN)
    assert link is not None
    assert (link.email, link.gc_user_id) == ("ivan.petrov@example.com", "187654321")
    await eventually(lambda: _salebot_client_id_stored(app, IVAN))
    exported = [r for r in standins.getcourse.requests if r.endpoint == "users"]
    assert [r.params.get("email") for r in exported] == ["ivan.petrov@example.com"]


async def _salebot_client_id_stored(app: App, telegram_id: int) -> bool:
    link = await app.services.links.current_link(telegram_id)
    return link is not None and link.salebot_client_id is not None


async def test_linked_student_sees_masked_email_and_changes_it(
    standins: StandIns, app: App
) -> None:
    ivan = Person(standins.telegram, IVAN)
    ivan.says("ivan.petrov@example.com")  # no /start needed: an unlinked person's email is taken
    await ivan.reply("Готово")
    await salebot_holds(standins, IVAN, {"gc_user_id": "187654321"})

    ivan.says("/start")
    card = await ivan.reply()
    assert "i***@example.com" in card.text
    assert "ivan.petrov" not in card.text
    (button_text, button_data), *_ = card.buttons()
    assert button_text == "Сменить email"

    standins.telegram.press_button(IVAN, card.message_id, button_data)
    await ivan.reply("Пришлите email")
    assert standins.telegram.answered_callbacks  # the button stops spinning

    ivan.says("anna@example.org")
    relinked = await ivan.reply("Готово")
    assert "anna@example.org" in relinked.text
    await salebot_holds(standins, IVAN, {"email": "anna@example.org", "gc_user_id": "187654322"})
    link = await app.services.links.current_link(IVAN)
    assert link is not None
    assert link.gc_user_id == "187654322"

    # The /email command works as well as the button.
    ivan.says("/email")
    await ivan.reply("Пришлите email")
    ivan.says("maria.sidorova@example.com")
    await ivan.reply("Готово")
    await salebot_holds(standins, IVAN, {"gc_user_id": "187654323"})


WRONG_INPUTS = [
    ("hello there", "не похоже на email"),
    ("<b>bold</b>@<i>x</i>", "не похоже на email"),
    ("*bold* _it_ [link](http://x.y)", "не похоже на email"),
    ("a" * 4000, "слишком длинное"),
    ("ivan@example.com, anna@example.org", "не похоже на email"),
]


@pytest.mark.parametrize(("text", "answer"), WRONG_INPUTS)
async def test_wrong_text_gets_polite_answer_and_changes_nothing(
    standins: StandIns, app: App, text: str, answer: str
) -> None:
    ivan = Person(standins.telegram, IVAN)
    ivan.says(text)
    reply = await ivan.reply()
    assert answer in reply.text
    assert reply.params.get("parse_mode") == "HTML"
    # Echoed only escaped: the raw text sent to Telegram holds no markup from the person.
    assert "<b>bold" not in reply.params["text"]
    assert "<i>" not in reply.params["text"]
    assert len(reply.text) < 400
    assert standins.getcourse.requests == []
    assert standins.salebot.requests_of("save_variables") == []
    assert await app.services.links.current_link(IVAN) is None

    ivan.says("ivan.petrov@example.com")  # and can simply try again
    await ivan.reply("Готово")


async def test_html_is_escaped_when_echoed(standins: StandIns, app: App) -> None:
    ivan = Person(standins.telegram, IVAN)
    ivan.says("<script>alert(1)</script>")
    reply = await ivan.reply()
    raw = standins.telegram.calls_of("sendMessage")[-1].params["text"]
    assert "&lt;script&gt;" in raw
    assert "<script>" not in raw
    assert "не похоже на email" in reply.text


@pytest.mark.parametrize("kind", ["photo", "sticker", "voice"])
async def test_non_text_gets_polite_answer(standins: StandIns, app: App, kind: str) -> None:
    ivan = Person(standins.telegram, IVAN)
    getattr(standins.telegram, f"send_{kind}")(IVAN)
    reply = await ivan.reply()
    assert "только текст" in reply.text
    assert standins.getcourse.requests == []
    assert await app.services.links.current_link(IVAN) is None


async def test_unknown_email_is_not_found_and_nothing_written(standins: StandIns, app: App) -> None:
    ivan = Person(standins.telegram, IVAN)
    ivan.says("nobody@example.com")
    await ivan.reply("Проверяю")
    reply = await ivan.reply()
    assert "Не нашёл" in reply.text
    assert "nobody@example.com" in reply.text
    assert standins.salebot.requests_of("save_variables") == []
    assert await app.services.links.current_link(IVAN) is None


async def test_slow_export_polled_until_ready(standins: StandIns, app: App) -> None:
    standins.getcourse.not_ready_polls = 3
    ivan = Person(standins.telegram, IVAN)
    ivan.says("ivan.petrov@example.com")
    await ivan.reply("Проверяю")
    await ivan.reply("Готово")
    polls = [r for r in standins.getcourse.requests if r.endpoint == "exports"]
    assert [r.error_code for r in polls] == [909, 909, 909, None]


@pytest.mark.parametrize(
    "misbehave",
    [
        pytest.param(lambda gc: gc.fail_next("users", error_code=905, times=10**6), id="busy-905"),
        pytest.param(lambda gc: gc.faults.add("users", Fault(status=500)), id="http-500"),
        pytest.param(lambda gc: gc.faults.add("users", Fault(body="<html>oops</html>")), id="html"),
        pytest.param(lambda gc: gc.faults.add("exports", Fault(body="")), id="empty-body"),
        pytest.param(
            lambda gc: gc.faults.add("users", Fault(json_body={"unexpected": True})),
            id="garbage-json",
        ),
        pytest.param(lambda gc: setattr(gc, "not_ready_polls", 10_000), id="never-ready"),
    ],
)
async def test_getcourse_trouble_means_try_later(
    standins: StandIns, misbehave: Callable[[GetCourseStandIn], object]
) -> None:
    # Patience shorter than one attempt: the queued lookup is given up after its first export.
    settings = standins.settings(
        getcourse_lookup_timeout=0.3, getcourse_queue_patience_minutes=0.0001
    )
    async with polling_bot(standins, settings) as app:
        misbehave(standins.getcourse)
        ivan = Person(standins.telegram, IVAN)
        ivan.says("ivan.petrov@example.com")
        await ivan.reply("Проверяю")
        reply = await ivan.reply()
        assert "Сейчас не получается проверить" in reply.text
        assert "Не нашёл" not in reply.text
        assert await app.services.links.current_link(IVAN) is None
        assert standins.salebot.requests == []

        # Once GetCourse is well again, the same person links without starting over.
        standins.getcourse.faults.clear()
        standins.getcourse.not_ready_polls = 0
        standins.getcourse.complete_exports()
        ivan.says("ivan.petrov@example.com")
        await ivan.reply("Готово")


async def test_a_passing_getcourse_failure_is_retried_while_the_person_waits(
    standins: StandIns, app: App
) -> None:
    standins.getcourse.faults.add("users", Fault(status=500))  # one failure, then well
    ivan = Person(standins.telegram, IVAN)
    ivan.says("ivan.petrov@example.com")
    await ivan.reply("Готово")
    # The failed start (answered by the fault, so not counted) and the one that worked.
    starts = [r.counted for r in standins.getcourse.requests if r.endpoint == "users"]
    assert starts == [False, True]
    assert [text.split()[0] for text in ivan.texts()] == ["Проверяю", "Готово!"]


@pytest.mark.parametrize("endpoint", ["users", "exports"])
async def test_over_budget_903_means_try_later_and_pauses_exports(
    standins: StandIns, app: App, endpoint: str
) -> None:
    standins.getcourse.fail_next(endpoint, error_code=903)
    ivan = Person(standins.telegram, IVAN)
    ivan.says("ivan.petrov@example.com")
    await ivan.reply("Проверяю")
    assert "Сейчас не получается проверить" in (await ivan.reply()).text
    sent = len(standins.getcourse.requests)

    ivan.says("ivan.petrov@example.com")  # still "try later", and GetCourse is left alone
    await ivan.reply("Проверяю")
    assert "Сейчас не получается проверить" in (await ivan.reply()).text
    assert len(standins.getcourse.requests) == sent
    assert await app.services.links.current_link(IVAN) is None


async def test_getcourse_unreachable_means_try_later(standins: StandIns) -> None:
    settings = standins.settings(
        getcourse_base_url="http://127.0.0.1:9",  # nothing listens
        getcourse_queue_patience_minutes=0.0001,  # given up after the first attempt
    )
    async with polling_bot(standins, settings) as app:
        ivan = Person(standins.telegram, IVAN)
        ivan.says("ivan.petrov@example.com")
        await ivan.reply("Проверяю")
        assert "Сейчас не получается проверить" in (await ivan.reply()).text
        assert await app.services.links.current_link(IVAN) is None


@pytest.mark.parametrize(
    "trouble",
    [
        pytest.param("no-client", id="no-salebot-client-yet"),
        pytest.param("down", id="salebot-down"),
        pytest.param("client-not-found", id="client-not-found-answer"),
    ],
)
async def test_salebot_not_ready_link_kept_and_delivered_later(
    standins: StandIns, app: App, trouble: str
) -> None:
    salebot = standins.salebot
    user = NEWCOMER if trouble == "no-client" else IVAN
    if trouble == "down":
        salebot.set_down(True)
    if trouble == "client-not-found":
        salebot.answer_client_not_found("save_variables", times=2)

    person = Person(standins.telegram, user)
    person.says("ivan.petrov@example.com")
    await person.reply("Готово")
    link = await app.services.links.current_link(user)
    assert link is not None

    # A failed attempt is recorded and the write stays queued.
    await eventually(lambda: _failed_attempts(app))

    if trouble == "no-client":
        salebot.add_client(NEWCOMER, group=FUNNEL_BOT)
    salebot.set_down(False)
    await salebot_holds(
        standins,
        user,
        {"email": "ivan.petrov@example.com", "gc_user_id": "187654321", "telegram_id": str(user)},
    )


async def _failed_attempts(app: App) -> bool:
    rows = await app.services.database.connection.execute_fetchall(
        "SELECT attempts, last_error FROM outbox WHERE state = 'pending'"
    )
    return any(row["attempts"] >= 1 and row["last_error"] for row in rows)


async def test_pending_write_delivered_after_restart(standins: StandIns) -> None:
    standins.salebot.set_down(True)
    async with polling_bot(standins) as app:
        person = Person(standins.telegram, IVAN)
        person.says("ivan.petrov@example.com")
        await person.reply("Готово")
        assert await app.services.links.current_link(IVAN) is not None
    # Stopped with the write still pending; Salebot recovers while the bot is down.
    standins.salebot.set_down(False)
    async with polling_bot(standins):
        await salebot_holds(standins, IVAN, {"gc_user_id": "187654321"})


async def test_half_finished_dialog_survives_restart(standins: StandIns) -> None:
    async with polling_bot(standins):
        ivan = Person(standins.telegram, IVAN)
        ivan.says("ivan.petrov@example.com")
        await ivan.reply("Готово")
        ivan.says("/email")
        await ivan.reply("Пришлите email")
    async with polling_bot(standins) as app:
        ivan.says("anna@example.org")  # still read as the new email after the restart
        await ivan.reply("Готово")
        link = await app.services.links.current_link(IVAN)
        assert link is not None
        assert link.email == "anna@example.org"


async def test_group_chat_messages_are_ignored(standins: StandIns, app: App) -> None:
    standins.telegram.send_message(
        IVAN, "ivan.petrov@example.com", chat_id=-100123, chat_type="supergroup"
    )
    ivan = Person(standins.telegram, IVAN)
    ivan.says("/start")  # a later private message is answered, so the group one was seen
    await ivan.reply()
    assert standins.telegram.bot_messages(-100123) == []
    assert standins.getcourse.requests == []


async def test_writing_again_delivers_a_write_waiting_for_the_salebot_client(
    standins: StandIns,
) -> None:
    # Retries a minute apart: only the person writing again can bring the write forward.
    settings = standins.settings(salebot_retry_first_delay=60, salebot_retry_max_delay=60)
    async with polling_bot(standins, settings):
        newcomer = Person(standins.telegram, NEWCOMER)
        newcomer.says("ivan.petrov@example.com")
        await newcomer.reply("Готово")
        await eventually(lambda: bool(standins.salebot.requests))  # first attempt: no client
        standins.salebot.add_client(NEWCOMER, group=FUNNEL_BOT)  # they start the funnel bot

        newcomer.says("/start")  # ...and come back to us
        await newcomer.reply()
        await salebot_holds(standins, NEWCOMER, {"telegram_id": str(NEWCOMER)})

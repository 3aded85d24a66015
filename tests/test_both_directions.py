"""Issue 13 over loopback HTTP: GetCourse learns the Telegram and Salebot IDs of a link (the
GetCourse stand-in's import endpoint), and GetCourse events reach the Salebot funnel (POSTed to
the bot's public listener as a GetCourse process would, delivered to the Salebot stand-in)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bot.app import App
from bot.settings import Settings
from handlers.texts import Texts
from sandbox.server import Fault
from services.models import GetCourseUser
from services.privacy.erasure import Held
from services.storage.directory import DirectoryRepository
from tests.conftest import FUNNEL_BOT, OPERATOR_ID, Person, StandIns, eventually, free_port
from tests.operator_console import OPERATOR_CHAT, operator_chat_notices, plain
from tests.running import serving

SECRET = "gc-events-secret_0123456789"
IVAN = 100000001
MARIA = 100000002
IVAN_GC = GetCourseUser(id="187654321", email="ivan.petrov@example.com", first_name="Иван")
ANNA_GC = GetCourseUser(id="187654322", email="anna@example.org", first_name="Анна")
FIELDS = ("telegram_id", "sb_id")


def both_ways(standins: StandIns, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "getcourse_events_secret": SECRET,
        "http_listen": f"127.0.0.1:{free_port()}",
        "salebot_linked_message": "gc_linked",
    }
    return standins.settings(**{**values, **overrides})


@pytest.fixture
def fields_created(standins: StandIns) -> None:
    """The school created the two additional fields in GetCourse."""
    standins.getcourse.custom_fields.extend(FIELDS)


@pytest.fixture
async def app(standins: StandIns, fields_created: None) -> AsyncIterator[App]:
    async with serving(standins, both_ways(standins)) as running:
        yield running


def client_id(standins: StandIns, telegram_id: int) -> int:
    client = standins.salebot.client_by_platform_id(telegram_id, FUNNEL_BOT)
    assert client is not None
    return client.id


def field_write(email: str, telegram_id: str, salebot_id: str) -> dict[str, Any]:
    return {
        "user": {"email": email, "addfields": {"telegram_id": telegram_id, "sb_id": salebot_id}},
        "system": {"refresh_if_exists": 1},
    }


def gc_fields(standins: StandIns, email: str) -> dict[str, str]:
    user = standins.getcourse.user_by_email(email)
    assert user is not None
    return {title: user.custom.get(title, "") for title in FIELDS}


async def getcourse_names(standins: StandIns, email: str, telegram_id: int) -> None:
    """Until the GetCourse user of ``email`` holds this person's Telegram ID and Salebot client."""
    salebot_id = str(client_id(standins, telegram_id))
    expected = {"telegram_id": str(telegram_id), "sb_id": salebot_id}
    await eventually(lambda: gc_fields(standins, email) == expected)


async def post_event(settings: Settings, **params: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"http://{settings.http_listen}", timeout=5) as http:
        return await http.post("/getcourse/events", data=params)


async def count(app: App, sql: str) -> int:
    row = await app.services.database.fetchone(sql)
    assert row is not None
    return int(row[0])


def callbacks(standins: StandIns) -> list[tuple[int, str]]:
    return [(item["client_id"], item["message"]) for item in standins.salebot.callbacks]


async def operator_links_ivan(standins: StandIns, app: App) -> int:
    """An operator links Ivan; his Salebot client, once the linked message has reached it."""
    await app.services.operators.change.link(OPERATOR_ID, IVAN, IVAN_GC)
    ivan_client = client_id(standins, IVAN)
    await eventually(lambda: (ivan_client, "gc_linked") in callbacks(standins))
    return ivan_client


async def test_a_link_writes_both_ids_into_getcourse_and_calls_the_funnel_back(
    standins: StandIns, app: App
) -> None:
    ivan = Person(standins.telegram, IVAN)
    ivan.says("ivan.petrov@example.com")
    await ivan.reply("Готово")
    ivan_client = client_id(standins, IVAN)

    await eventually(lambda: gc_fields(standins, IVAN_GC.email)["sb_id"] != "")
    assert standins.getcourse.imports == [
        field_write("ivan.petrov@example.com", str(IVAN), str(ivan_client))
    ]
    assert gc_fields(standins, IVAN_GC.email) == {
        "telegram_id": str(IVAN),
        "sb_id": str(ivan_client),
    }
    # The linked message comes once the link's variables have landed.
    await eventually(lambda: callbacks(standins) == [(ivan_client, "gc_linked")])
    actions = [r.action for r in standins.salebot.requests]
    assert actions.index("save_variables") < actions.index("callback")


async def test_operator_link_relink_and_unlink_keep_getcourse_fields_true(
    standins: StandIns, app: App
) -> None:
    operators = app.services.operators.change
    ivan_client = str(client_id(standins, IVAN))
    await operators.link(OPERATOR_ID, IVAN, IVAN_GC)
    await eventually(lambda: gc_fields(standins, IVAN_GC.email)["sb_id"] == ivan_client)
    assert standins.getcourse.imports == [field_write(IVAN_GC.email, str(IVAN), ivan_client)]

    # Relinked to another GetCourse user: the old one is blanked, the new one gets the IDs.
    await operators.link(OPERATOR_ID, IVAN, ANNA_GC)
    await eventually(lambda: gc_fields(standins, ANNA_GC.email)["sb_id"] == ivan_client)
    assert gc_fields(standins, IVAN_GC.email) == {"telegram_id": "", "sb_id": ""}
    assert standins.getcourse.imports[1:] == [
        field_write(IVAN_GC.email, "", ""),
        field_write(ANNA_GC.email, str(IVAN), ivan_client),
    ]

    await operators.unlink(OPERATOR_ID, IVAN)
    await eventually(lambda: gc_fields(standins, ANNA_GC.email) == {"telegram_id": "", "sb_id": ""})
    assert standins.getcourse.imports[3:] == [field_write(ANNA_GC.email, "", "")]


async def test_a_failing_import_is_retried_across_a_restart(
    standins: StandIns, fields_created: None
) -> None:
    settings = both_ways(standins)
    standins.getcourse.faults.add("import", Fault(status=500, body="Internal error"), times=None)

    def attempts() -> int:
        return sum(1 for r in standins.getcourse.requests if r.endpoint == "import")

    async with serving(standins, settings) as app:
        await app.services.operators.change.link(OPERATOR_ID, IVAN, IVAN_GC)
        await eventually(lambda: attempts() >= 2)
        write = await app.services.operators.find.card(IVAN)
        assert write.field_write is not None
        assert (write.field_write.state, write.field_write.cause) == ("pending", "unavailable")
    assert gc_fields(standins, IVAN_GC.email) == {"telegram_id": "", "sb_id": ""}

    standins.getcourse.faults.clear("import")
    async with serving(standins, settings) as app:
        await eventually(lambda: gc_fields(standins, IVAN_GC.email)["telegram_id"] == str(IVAN))
        assert len(standins.getcourse.imports) == 1
        card = await app.services.operators.find.card(IVAN)
        assert card.field_write is not None
        assert card.field_write.state == "delivered"


async def test_an_event_reaches_salebot_as_variables_then_a_callback_once(
    standins: StandIns, app: App
) -> None:
    ivan_client = await operator_links_ivan(standins, app)

    event = {"secret": SECRET, "event": "paid", "user_id": "187654321", "event_id": "order-77"}
    first = await post_event(app.settings, **event, amount="1500", offer="Старт")
    assert first.status_code == 200
    await eventually(lambda: (ivan_client, "gc_paid") in callbacks(standins))
    # GetCourse calls again: the same event_id is taken (200) and not delivered twice.
    again = await post_event(app.settings, **event, amount="1500", offer="Старт")
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"

    assert callbacks(standins) == [(ivan_client, "gc_linked"), (ivan_client, "gc_paid")]
    variables = standins.salebot.client_variables(ivan_client)
    assert (variables["gc_amount"], variables["gc_offer"]) == ("1500", "Старт")
    saved = [
        r for r in standins.salebot.requests_of("save_variables") if "gc_amount" in str(r.body)
    ]
    last_callback = standins.salebot.requests_of("callback")[-1]
    assert standins.salebot.requests.index(saved[0]) < standins.salebot.requests.index(
        last_callback
    )
    assert await count(app, "SELECT COUNT(*) FROM getcourse_events") == 1


async def test_an_event_for_someone_not_linked_yet_is_delivered_when_they_link(
    standins: StandIns, app: App
) -> None:
    async with httpx.AsyncClient(base_url=f"http://{app.settings.http_listen}") as http:
        # A GET with the parameters in the query, as a process's "call URL" may send it.
        answer = await http.get(
            "/getcourse/events",
            params={"secret": SECRET, "event": "paid", "email": "Anna@Example.org"},
        )
    assert answer.status_code == 200
    assert answer.json()["status"] == "waiting"
    assert standins.salebot.callbacks == []

    await app.services.operators.change.link(OPERATOR_ID, MARIA, ANNA_GC)
    maria_client = client_id(standins, MARIA)
    await eventually(lambda: (maria_client, "gc_paid") in callbacks(standins))
    card = await app.services.operators.find.card(MARIA)
    assert [(event.event, event.delivery) for event in card.events] == [("paid", "delivered")]


@pytest.mark.parametrize(
    ("params", "status", "reason"),
    [
        ({"secret": "wrong-secret-0123456789", "event": "paid", "user_id": "1"}, 403, ""),
        ({"event": "paid", "user_id": "187654321"}, 403, ""),
        ({"secret": SECRET, "event": "Paid!", "user_id": "187654321"}, 400, "event must be"),
        ({"secret": SECRET, "event": "paid"}, 400, "user_id or email is required"),
        ({"secret": SECRET, "event": "paid", "user_id": "{object.user.id}"}, 400, "user_id"),
        ({"secret": SECRET, "event": "paid", "email": "1", "bad-name": "x"}, 400, "email"),
        ({"secret": SECRET, "event": "paid", "user_id": "1", "a-b": "x"}, 400, "parameter names"),
        ({"secret": SECRET, "event": "paid", "user_id": "1", "big": "x" * 70_000}, 413, "64 KB"),
    ],
)
async def test_a_refused_event_changes_nothing(
    standins: StandIns, app: App, params: dict[str, str], status: int, reason: str
) -> None:
    ivan_client = await operator_links_ivan(standins, app)

    answer = await post_event(app.settings, **params)
    assert answer.status_code == status
    assert reason in answer.text
    assert len(answer.text.strip().splitlines()) == 1
    assert await count(app, "SELECT COUNT(*) FROM getcourse_events") == 0
    assert (
        await count(app, "SELECT COUNT(*) FROM salebot_callbacks WHERE event_row IS NOT NULL") == 0
    )
    assert callbacks(standins) == [(ivan_client, "gc_linked")]


async def test_events_are_off_without_a_secret_and_health_is_not_public(
    standins: StandIns,
) -> None:
    settings = standins.webhook_settings()
    async with serving(standins, settings):
        answer = await post_event(settings, secret=SECRET, event="paid", user_id="187654321")
        assert answer.status_code == 404
        async with httpx.AsyncClient(base_url=f"http://{settings.http_listen}") as http:
            assert (await http.get("/metrics")).status_code == 404
        async with httpx.AsyncClient(base_url=f"http://{settings.health_listen}") as http:
            assert (await http.get("/healthz")).status_code == 200


async def test_a_missing_getcourse_field_is_told_to_the_operators_once(
    standins: StandIns,
) -> None:
    standins.getcourse.unknown_field_answer = "error"  # and the fields were never created
    settings = both_ways(standins, operator_chat_id=OPERATOR_CHAT, operator_notice_interval=0.2)
    notice = plain(Texts.load("ru").render("notice_getcourse_field_missing", count=1))
    async with serving(standins, settings) as app:
        await app.services.operators.change.link(OPERATOR_ID, IVAN, IVAN_GC)
        await app.services.operators.change.link(OPERATOR_ID, MARIA, ANNA_GC)
        for person in (IVAN, MARIA):
            await eventually(lambda person=person: _write_failed(app, person))
    told = operator_chat_notices(standins, notice.split("—")[0])
    assert len(told) == 1
    assert notice in told[0]
    assert "create_fields=telegram_id, sb_id" in told[0]


async def _write_failed(app: App, telegram_id: int) -> bool:
    card = await app.services.operators.find.card(telegram_id)
    write = card.field_write
    return write is not None and (write.state, write.cause) == ("failed", "field_missing")


async def test_a_callback_that_may_have_landed_is_not_sent_again(
    standins: StandIns, app: App
) -> None:
    await operator_links_ivan(standins, app)
    standins.salebot.fail_next("callback", status=502)

    answer = await post_event(app.settings, secret=SECRET, event="paid", user_id="187654321")
    assert answer.status_code == 200

    async def uncertain() -> bool:
        events = (await app.services.operators.find.card(IVAN)).events
        return [event.delivery for event in events] == ["uncertain"]

    await eventually(uncertain)
    # Even "retry all" leaves it: only an operator who checked Salebot can tell.
    await app.services.operators.change.retry_all(OPERATOR_ID)
    assert await count(app, "SELECT COUNT(*) FROM salebot_callbacks WHERE state = 'uncertain'") == 1
    assert await count(app, "SELECT COUNT(*) FROM salebot_callbacks WHERE state = 'pending'") == 0
    assert len(standins.salebot.requests_of("callback")) == 2  # gc_linked, and the one 502


async def test_operators_see_the_field_write_and_the_events(standins: StandIns, app: App) -> None:
    operator = Person(standins.telegram, OPERATOR_ID)
    ivan_client = await operator_links_ivan(standins, app)
    await post_event(app.settings, secret=SECRET, event="paid", user_id="187654321")
    await post_event(app.settings, secret=SECRET, event="paid", email="nobody@example.com")
    await eventually(lambda: (ivan_client, "gc_paid") in callbacks(standins))
    await eventually(lambda: gc_fields(standins, IVAN_GC.email)["sb_id"] == str(ivan_client))

    operator.says(f"/find {IVAN}")
    card = plain((await operator.reply(f"Telegram {IVAN}")).text or "")
    assert "GetCourse, запись полей ID: ✅ выполнена" in card
    assert "События GetCourse:" in card
    assert "paid: ✅ доставлено в Salebot" in card

    operator.says("/stats")
    stats = plain((await operator.reply("Статистика")).text or "")
    assert (
        "paid: доставлено 1, ждут 0, ждут привязки 1, не доставлено 0, под вопросом 0, "
        "не дождались 0"
    ) in stats

    async with httpx.AsyncClient(base_url=f"http://{app.settings.health_listen}") as http:
        scraped = (await http.get("/metrics")).text
    assert 'bot_getcourse_events_total{outcome="queued"} 1.0' in scraped
    assert 'bot_getcourse_events_total{outcome="waiting"} 1.0' in scraped
    assert 'bot_getcourse_events_total{outcome="delivered"} 1.0' in scraped
    assert "bot_getcourse_events_waiting 1.0" in scraped
    assert "bot_getcourse_import_requests 1.0" in scraped


async def test_forgetting_a_person_blanks_their_fields_and_deletes_their_events(
    standins: StandIns, app: App
) -> None:
    """``/forget`` and ``/erase`` (services.privacy.erasure) take issue 13's rows with them."""
    await app.services.operators.change.link(OPERATOR_ID, IVAN, IVAN_GC)
    await eventually(lambda: gc_fields(standins, IVAN_GC.email)["telegram_id"] == str(IVAN))
    await post_event(app.settings, secret=SECRET, event="paid", user_id="187654321")
    await eventually(lambda: "gc_paid" in [message for _, message in callbacks(standins)])

    erased = await app.services.erasure.erase(IVAN)
    assert erased.removed[Held.GETCOURSE] >= 3  # the field write, the event, its callbacks

    await eventually(lambda: gc_fields(standins, IVAN_GC.email) == {"telegram_id": "", "sb_id": ""})

    async def nothing_left() -> bool:
        rows = 0
        for table in ("getcourse_field_writes", "getcourse_events", "salebot_callbacks"):
            rows += await count(app, f"SELECT COUNT(*) FROM {table}")
        return rows == 0

    await eventually(nothing_left)


async def test_a_user_who_changed_email_in_getcourse_is_written_not_created(
    standins: StandIns, app: App
) -> None:
    """The import creates a user for an email GetCourse does not know: the write goes to the
    email the directory now knows for the link's user."""
    ivan = standins.getcourse.user_by_email(IVAN_GC.email)
    assert ivan is not None
    ivan.email = "ivan.new@example.com"
    moved = GetCourseUser(id=IVAN_GC.id, email="ivan.new@example.com", first_name="Иван")
    await DirectoryRepository(app.services.database).upsert([moved], 0.0)
    users = len(standins.getcourse.users)

    await app.services.operators.change.link(OPERATOR_ID, IVAN, IVAN_GC)

    await eventually(
        lambda: gc_fields(standins, "ivan.new@example.com")["telegram_id"] == str(IVAN)
    )
    assert len(standins.getcourse.users) == users
    assert [item["user"]["email"] for item in standins.getcourse.imports] == [
        "ivan.new@example.com"
    ]


async def test_a_replaced_link_moves_the_getcourse_fields_to_the_new_account(
    standins: StandIns, fields_created: None
) -> None:
    settings = both_ways(standins, link_conflict="replace")
    async with serving(standins, settings):
        ivan, maria = Person(standins.telegram, IVAN), Person(standins.telegram, MARIA)
        ivan.says(IVAN_GC.email)
        await ivan.reply("Готово")
        await eventually(lambda: gc_fields(standins, IVAN_GC.email)["telegram_id"] == str(IVAN))
        maria.says(IVAN_GC.email)  # the same GetCourse user claimed by a second account
        await maria.reply("Готово")
        await getcourse_names(standins, IVAN_GC.email, MARIA)


async def test_the_events_endpoint_is_rate_limited(
    standins: StandIns, fields_created: None
) -> None:
    settings = both_ways(standins, getcourse_events_per_minute=2)
    async with serving(standins, settings) as app:
        for _ in range(2):
            answer = await post_event(settings, secret=SECRET, event="paid", user_id="1")
            assert answer.status_code == 200
        answer = await post_event(settings, secret=SECRET, event="paid", user_id="1")
        assert answer.status_code == 429
        assert int(answer.headers["Retry-After"]) >= 1
        assert await count(app, "SELECT COUNT(*) FROM getcourse_events") == 2


async def test_a_callback_cut_off_by_a_stop_is_not_sent_again_after_the_restart(
    standins: StandIns, fields_created: None
) -> None:
    settings = both_ways(standins, salebot_linked_message="", shutdown_timeout=0.5)
    async with serving(standins, settings) as app:
        await app.services.operators.change.link(OPERATOR_ID, IVAN, IVAN_GC)
        await eventually(lambda: gc_fields(standins, IVAN_GC.email)["telegram_id"] == str(IVAN))
        standins.salebot.delay_next("callback", 3.0)
        await post_event(settings, secret=SECRET, event="paid", user_id="187654321")
        await eventually(lambda: len(standins.salebot.requests_of("callback")) == 1)
    # Stopped mid-call: Salebot may have taken it (the stand-in does, once its delay is over).
    async with serving(standins, settings) as app:

        async def uncertain() -> bool:
            events = (await app.services.operators.find.card(IVAN)).events
            return [event.delivery for event in events] == ["uncertain"]

        await eventually(uncertain)
        assert (
            await count(app, "SELECT COUNT(*) FROM salebot_callbacks WHERE state = 'sending'") == 0
        )
    assert len(standins.salebot.requests_of("callback")) == 1


async def test_only_a_proven_link_reaches_getcourse(
    standins: StandIns, fields_created: None
) -> None:
    """With the proof of ownership on, nothing is written into GetCourse until the person has
    proved the email (here with their own contact), then both IDs are."""
    settings = both_ways(standins, ownership_proof="contact")
    async with serving(standins, settings):
        ivan = Person(standins.telegram, IVAN)
        ivan.says(IVAN_GC.email)
        await ivan.reply("Проверяю")
        await ivan.reply(lambda message: bool(message.reply_markup))  # share your phone
        assert standins.getcourse.imports == []
        contact = {"phone_number": "+79161234567", "first_name": "Ivan", "user_id": IVAN}
        standins.telegram.send_message(IVAN, contact=contact)
        await ivan.reply("Готово")
        await getcourse_names(standins, IVAN_GC.email, IVAN)

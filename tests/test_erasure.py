"""Erasing a person (/forget, /erase): no row anywhere keeps their Telegram ID or email, and
their Salebot client loses our variables through the outbox. Over loopback HTTP: the Telegram,
GetCourse and Salebot stand-ins."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator

import pytest

from bot.app import App
from handlers.texts import Texts
from services.privacy.erasure import PERSONAL_TABLES, ErasureService, Held
from services.storage.database import Database
from tests.conftest import FUNNEL_BOT, OPERATOR_ID, Person, StandIns, eventually
from tests.operator_console import IVAN, MARIA, Console, console_for, plain

IVAN_EMAIL = "ivan.petrov@example.com"
RU = Texts.load("ru")
# Columns that name a person: any table holding one must be declared in PERSONAL_TABLES.
PERSON_COLUMN = re.compile(r"telegram|email|chat_id")
# The audit keeps who erased whom and when (the target's ID), never the erased data.
AUDIT_COLUMNS_KEPT = {("operator_audit", "target"), ("operator_audit", "operator_id")}


async def tables(database: Database) -> dict[str, list[str]]:
    rows = await database.fetchall(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    )
    found = {}
    for row in rows:
        columns = await database.fetchall(f"PRAGMA table_info({row['name']})")
        found[str(row["name"])] = [str(column["name"]) for column in columns]
    return found


async def holding(database: Database, telegram_id: int, email: str) -> set[tuple[str, str]]:
    """(table, column) of every stored value that is the person's ID or holds their email."""
    found = set()
    for table, columns in (await tables(database)).items():
        for row in await database.fetchall(f"SELECT * FROM {table}"):
            for column in columns:
                value = row[column]
                if value == telegram_id or (
                    isinstance(value, str) and (str(telegram_id) in value or email in value)
                ):
                    found.add((table, column))
    return found - AUDIT_COLUMNS_KEPT


@contextlib.asynccontextmanager
async def opened_console(standins: StandIns, **settings: object) -> AsyncIterator[Console]:
    async with contextlib.aclosing(console_for(standins, **settings)) as consoles:
        async for console in consoles:
            yield console


@pytest.fixture
async def console(standins: StandIns) -> AsyncIterator[Console]:
    async with opened_console(standins) as value:
        yield value


# -- the declared list covers the schema ---------------------------------------------------------


async def test_every_table_naming_a_person_is_declared_for_erasure(database: Database) -> None:
    schema = await tables(database)
    declared = {table.name: table for table in PERSONAL_TABLES}
    for name, columns in schema.items():
        personal = [column for column in columns if PERSON_COLUMN.search(column)]
        if not personal:
            continue
        assert name in declared, f"table {name} holds {personal}: add it to PERSONAL_TABLES"
        table = declared[name]
        if table.where is not None:
            continue  # a condition of its own
        for column in personal:
            if "email" in column and not table.by_telegram_id:
                assert column in table.by_email, f"{name}.{column} is not erased by email"
            elif "email" not in column:
                assert column in table.by_telegram_id, f"{name}.{column} is not erased"
    for table in PERSONAL_TABLES:
        assert table.name in schema, f"PERSONAL_TABLES names no table {table.name}"
    # Every declared condition is valid SQL on the real schema.
    erased = await ErasureService(database, on_enqueued=lambda: None).erase(IVAN)
    assert erased.nothing


def test_every_kind_of_data_has_its_line_in_both_languages() -> None:
    for language in ("ru", "en"):
        texts = Texts.load(language)
        for held in Held:
            assert f"erased_{held}" in texts


# -- /forget -------------------------------------------------------------------------------------


def salebot_variables(standins: StandIns, telegram_id: int) -> dict[str, str]:
    client = standins.salebot.client_by_platform_id(telegram_id, FUNNEL_BOT)
    assert client is not None
    return standins.salebot.client_variables(client.id)


async def test_forget_removes_everything_and_blanks_salebot(standins: StandIns, app: App) -> None:
    telegram = standins.telegram
    ivan, maria = Person(telegram, IVAN), Person(telegram, MARIA)
    ivan.says(IVAN_EMAIL)
    await ivan.reply("Готово")
    await eventually(lambda: salebot_variables(standins, IVAN).get("email") == IVAN_EMAIL)
    maria.says(IVAN_EMAIL)  # a conflict: the row names Ivan as the holder
    await maria.reply("уже привязан")
    ivan.says("/email")
    await ivan.reply()
    ivan.says("nobody@example.com")  # a lookup, and a dialog left waiting for an email
    await ivan.reply("Не нашёл")
    database = app.services.database
    assert {"links", "outbox", "lookups", "link_conflicts", "telegram_profiles"} <= {
        table for table, _ in await holding(database, IVAN, IVAN_EMAIL)
    }

    ivan.says("/forget")
    question = await ivan.reply(lambda message: bool(message.buttons()))
    assert await app.services.links.current_link(IVAN) is not None  # nothing before the press
    [confirm] = [data for text, data in question.buttons() if "Удалить" in text]
    telegram.press_button(IVAN, question.message_id, confirm)
    done = await telegram.wait_for_message(
        IVAN, lambda message: message.message_id == question.message_id and message.edits == 1
    )
    report = plain(done.text or "")
    assert report.startswith(plain(RU.render("forget_done")))
    for line in ("erased_link", "erased_profile", "erased_dialog", "erased_salebot"):
        assert plain(RU.render(line)) in report
    assert plain(RU.render("erased_conflicts", count=1)) in report
    assert done.buttons() == []

    await eventually(lambda: salebot_variables(standins, IVAN)["email"] == "")
    variables = salebot_variables(standins, IVAN)
    assert (variables["gc_user_id"], variables["telegram_id"]) == ("", "")
    assert variables["tg_username"] == "@ivan_petrov"  # not ours: left alone

    async def nothing_left() -> bool:
        return await holding(database, IVAN, IVAN_EMAIL) == set()

    await eventually(nothing_left)
    # Maria's own data stays.
    for table in ("lookups", "telegram_profiles"):
        sql = f"SELECT 1 FROM {table} WHERE telegram_id = ?"
        assert await database.fetchone(sql, (MARIA,)), table


async def test_forget_cancelled_keeps_everything(console: Console) -> None:
    await console.link_student(IVAN, IVAN_EMAIL)
    await console.say("/forget", user=IVAN)
    await console.press(console.last(IVAN), "Не удалять", user=IVAN)
    assert console.text(IVAN) == plain(RU.render("forget_cancelled"))
    assert await console.services.links.current_link(IVAN) is not None


async def test_forget_by_someone_never_linked_removes_their_profile(console: Console) -> None:
    await console.say("/forget", user=MARIA)
    await console.press(console.last(MARIA), "Удалить", user=MARIA)
    # Their messages to the bot stored only who they are on Telegram.
    assert console.text(MARIA) == "\n".join(
        [plain(RU.render("forget_done")), plain(RU.render("erased_profile"))]
    )
    assert await holding(console.services.database, MARIA, "maria") == set()


# -- /erase --------------------------------------------------------------------------------------


async def test_operator_erase_is_audited_without_the_data(console: Console) -> None:
    await console.link_student(IVAN, IVAN_EMAIL)
    await console.say(f"/link {IVAN} {IVAN_EMAIL}")  # an audited change that holds the email
    await console.press(console.last(), "Привязать")
    await console.deliver()

    await console.say(f"/erase {IVAN}")
    question = console.last()
    assert plain(question.text or "").startswith(f"Удалить всё, что бот хранит о Telegram {IVAN}?")
    assert IVAN_EMAIL in plain(question.text or "")  # an operator's private chat
    await console.press(question, "Удалить")
    assert console.text().startswith(plain(RU.render("erase_done", telegram_id=IVAN)))

    # The blanking write is the one row kept, it carries no email, and goes once delivered.
    [blank] = await console.rows("SELECT * FROM outbox")
    assert (blank["telegram_id"], blank["state"], blank["erase_when_delivered"]) == (
        IVAN,
        "pending",
        1,
    )
    assert json.loads(blank["variables"]) == {
        "client.email": "",
        "client.gc_user_id": "",
        "client.telegram_id": "",
    }
    assert await console.deliver() == 1
    assert console.salebot_variables(IVAN)["email"] == ""
    assert await holding(console.services.database, IVAN, IVAN_EMAIL) == set()

    audit = await console.rows("SELECT * FROM operator_audit ORDER BY id")
    assert [(row["action"], row["target"], row["operator_id"]) for row in audit] == [
        ("link", str(IVAN), OPERATOR_ID),
        ("erase", str(IVAN), OPERATOR_ID),
    ]
    assert {(row["before"], row["after"]) for row in audit} == {("{}", "{}")}


async def test_erase_cancelled_keeps_everything(console: Console) -> None:
    await console.link_student(IVAN, IVAN_EMAIL)
    await console.say(f"/erase {IVAN}")
    question = console.last()
    await console.press(question, "Отмена")
    assert console.text() == plain(RU.render("erase_cancelled"))
    assert console.last().buttons() == []
    assert await console.services.links.current_link(IVAN) is not None
    assert await console.rows("SELECT * FROM operator_audit") == []


async def test_erase_of_someone_unknown_and_bad_input(console: Console) -> None:
    await console.say("/erase ivan")
    assert console.text() == plain(RU.render("erase_usage"))
    await console.say(f"/erase {MARIA}")
    await console.press(console.last(), "Удалить")
    assert console.text() == plain(RU.render("erase_done_nothing", telegram_id=MARIA))
    [entry] = await console.rows("SELECT * FROM operator_audit")
    assert (entry["action"], entry["target"]) == ("erase", str(MARIA))


async def test_the_blanking_survives_a_restart(standins: StandIns) -> None:
    async with opened_console(standins) as console:
        await console.link_student(IVAN, IVAN_EMAIL)
        standins.salebot.set_down(True)
        await console.say(f"/erase {IVAN}")
        await console.press(console.last(), "Удалить")
        assert await console.deliver() == 0  # Salebot is down: the write waits
    assert console.salebot_variables(IVAN)["email"] == IVAN_EMAIL

    standins.salebot.set_down(False)
    async with opened_console(standins) as restarted:

        async def delivered() -> bool:
            return await restarted.deliver() == 1

        await eventually(delivered)
        assert restarted.salebot_variables(IVAN)["email"] == ""
        assert await restarted.rows("SELECT * FROM outbox") == []


async def test_a_new_link_after_erasing_replaces_the_pending_blanking(console: Console) -> None:
    await console.link_student(IVAN, IVAN_EMAIL)
    await console.say(f"/erase {IVAN}")
    await console.press(console.last(), "Удалить")
    await console.link_student(IVAN, IVAN_EMAIL)  # links again before the blank went out
    assert console.salebot_variables(IVAN)["email"] == IVAN_EMAIL
    rows = await console.rows("SELECT state, erase_when_delivered FROM outbox")
    assert rows == [{"state": "delivered", "erase_when_delivered": 0}]

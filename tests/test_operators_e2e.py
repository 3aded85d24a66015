"""The operator console end to end: the bot long-polls the Telegram stand-in and talks to the
GetCourse and Salebot stand-ins; an operator and a student chat with it as people would."""

from __future__ import annotations

import csv
import io

from bot.app import App
from handlers.operators import OPERATOR_COMMANDS
from sandbox.telegram import SentMessage
from tests.conftest import FUNNEL_BOT, OPERATOR_ID, Person, StandIns, eventually, polling_bot
from tests.operator_console import IVAN, OPERATOR_CHAT, STRANGER, plain

STUDENT_COMMANDS = ["start", "email", "cancel", "forget"]


def salebot_variables(standins: StandIns, telegram_id: int) -> dict[str, str]:
    client = standins.salebot.client_by_platform_id(telegram_id, FUNNEL_BOT)
    assert client is not None
    return standins.salebot.client_variables(client.id)


def button(message: SentMessage, label: str) -> str:
    return next(data for text, data in message.buttons() if label in text)


def exported_rows(standins: StandIns, document: SentMessage) -> list[dict[str, str]]:
    assert document.document is not None
    content = standins.telegram.files[document.document["file_id"]].content
    assert content.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig")), delimiter=";"))


async def test_operator_finds_exports_and_unlinks_a_student(standins: StandIns, app: App) -> None:
    telegram = standins.telegram
    ivan = Person(telegram, IVAN)
    ivan.says("ivan.petrov@example.com")
    await ivan.reply("Готово")
    await eventually(lambda: salebot_variables(standins, IVAN).get("gc_user_id") == "187654321")

    operator = Person(telegram, OPERATOR_ID)
    operator.says("/find ivan.petrov@example.com")
    card = await operator.reply(lambda message: f"Telegram {IVAN}" in (message.text or ""))
    assert "Email: <code>ivan.petrov@example.com</code>" in (card.text or "")
    assert "GetCourse: ID <code>187654321</code> · Иван Петров" in (card.text or "")
    assert [text for text, _ in card.buttons()] == [
        "🔄 Записать заново",
        "✂️ Отвязать",
        "🕓 История",
    ]

    operator.says("/export")
    document = await operator.reply(lambda message: message.document is not None)
    [row] = exported_rows(standins, document)
    assert (row["telegram_id"], row["email"], row["gc_user_id"]) == (
        str(IVAN),
        "ivan.petrov@example.com",
        "187654321",
    )
    assert row["salebot_client_id"] == "836058541"
    assert row["salebot_write"] == "delivered"

    telegram.press_button(OPERATOR_ID, card.message_id, button(card, "Отвязать"))
    question = await operator.reply(lambda message: bool(message.buttons()))
    assert plain(question.text or "").startswith(
        f"Отвязать Telegram {IVAN} от ivan.petrov@example.com"
    )
    telegram.press_button(OPERATOR_ID, question.message_id, button(question, "Отвязать"))
    done = await telegram.wait_for_message(
        OPERATOR_ID,
        lambda message: message.message_id == question.message_id and message.edits == 1,
    )
    assert "отвязан от ivan.petrov@example.com" in (done.text or "")
    assert done.buttons() == []

    await eventually(lambda: salebot_variables(standins, IVAN).get("gc_user_id") == "")
    variables = salebot_variables(standins, IVAN)
    assert (variables["email"], variables["telegram_id"]) == ("", "")
    assert await app.services.links.current_link(IVAN) is None

    operator.says("/export")
    empty = await operator.reply(lambda message: message.document is not None)
    assert exported_rows(standins, empty) == []

    ivan.says("/start")  # the student starts over, as someone never linked
    assert "пришлите, пожалуйста" in (await ivan.reply()).text.lower()


async def test_only_operators_get_the_operator_command_menu(standins: StandIns) -> None:
    settings = standins.settings(operator_chat_id=OPERATOR_CHAT)
    async with polling_bot(standins, settings):
        telegram = standins.telegram

        def menu(**scope: object) -> list[str]:
            return [command["command"] for command in telegram.commands(scope=scope or None)]

        assert menu() == STUDENT_COMMANDS
        assert menu(type="chat", chat_id=OPERATOR_ID) == STUDENT_COMMANDS + list(OPERATOR_COMMANDS)
        assert menu(type="chat_member", chat_id=OPERATOR_CHAT, user_id=OPERATOR_ID) == list(
            OPERATOR_COMMANDS
        )
        assert menu(type="chat", chat_id=STRANGER) == []
        assert menu(type="chat", chat_id=OPERATOR_CHAT) == []  # not for every member


async def test_someone_no_longer_an_operator_loses_the_operator_menu(standins: StandIns) -> None:
    telegram = standins.telegram
    former = 100000055

    def menu(**scope: object) -> list[str]:
        return [command["command"] for command in telegram.commands(scope=scope)]

    both = standins.settings(operator_ids=f"{OPERATOR_ID},{former}", operator_chat_id=OPERATOR_CHAT)
    async with polling_bot(standins, both):
        assert menu(type="chat", chat_id=former) == STUDENT_COMMANDS + list(OPERATOR_COMMANDS)

    # Restarted with one operator, and their chat moved to another group.
    moved = OPERATOR_CHAT - 1
    async with polling_bot(standins, standins.settings(operator_chat_id=moved)):
        assert menu(type="chat", chat_id=former) == []
        assert menu(type="chat_member", chat_id=OPERATOR_CHAT, user_id=former) == []
        assert menu(type="chat_member", chat_id=OPERATOR_CHAT, user_id=OPERATOR_ID) == []
        assert menu(type="chat_member", chat_id=moved, user_id=OPERATOR_ID) == list(
            OPERATOR_COMMANDS
        )
        assert menu(type="chat", chat_id=OPERATOR_ID) == STUDENT_COMMANDS + list(OPERATOR_COMMANDS)

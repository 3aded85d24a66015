"""Telegram faults and abuse, end to end: the bot polls the Telegram stand-in over HTTP."""

from __future__ import annotations

from bot.app import App
from sandbox.server import Fault
from tests.conftest import OPERATOR_ID, Person, StandIns, eventually

IVAN = 100000001
ANNA = 100000002
FLOODER = 100000003


async def test_flood_control_429_is_waited_out(standins: StandIns, app: App) -> None:
    standins.telegram.fail_next("sendMessage", error_code=429, retry_after=1)
    ivan = Person(standins.telegram, IVAN)
    ivan.says("/start")
    await ivan.reply("GetCourse")
    statuses = [call.status for call in standins.telegram.calls_of("sendMessage")]
    assert statuses == [429, 200]


async def test_person_who_blocked_the_bot_is_marked_and_not_retried(
    standins: StandIns, app: App
) -> None:
    standins.telegram.block_user(IVAN)
    ivan = Person(standins.telegram, IVAN)
    ivan.says("/start")

    async def marked() -> bool:
        return (
            await app.services.database.fetchone(
                "SELECT 1 FROM blocked_chats WHERE telegram_id = ?", (IVAN,)
            )
            is not None
        )

    await eventually(marked)
    assert [call.status for call in standins.telegram.calls_of("sendMessage")] == [403]

    standins.telegram.unblock_user(IVAN)
    ivan.says("/start")  # writing again makes them reachable again
    await ivan.reply("GetCourse")
    assert not await marked()


async def test_polling_survives_network_errors(standins: StandIns, app: App) -> None:
    standins.telegram.faults.add("getUpdates", Fault(status=502, body="Bad Gateway"), times=2)
    ivan = Person(standins.telegram, IVAN)
    ivan.says("/start")
    await ivan.reply("GetCourse")


async def test_one_flooding_person_leaves_the_bot_responsive(standins: StandIns, app: App) -> None:
    for n in range(1000):
        standins.telegram.send_message(FLOODER, f"spam {n}")
    anna = Person(standins.telegram, ANNA)
    anna.says("/start")
    await anna.reply("GetCourse")

    flooder = Person(standins.telegram, FLOODER)
    await flooder.reply("слишком часто")
    await eventually(lambda: standins.telegram.polls_waiting > 0)  # the flood is drained
    # Ten answered, one "slow down", the rest dropped; GetCourse never bothered.
    assert len(standins.telegram.bot_messages(FLOODER)) <= 11
    assert standins.getcourse.requests == []


async def test_two_fast_messages_of_one_person_are_handled_in_order(
    standins: StandIns, app: App
) -> None:
    ivan = Person(standins.telegram, IVAN)
    ivan.says("ivan.petrov@example.com")
    ivan.says("/start")
    await ivan.reply("Проверяю")
    await ivan.reply("Готово")
    card = await ivan.reply()
    assert "i***@example.com" in card.text  # /start saw the link the first message made


async def test_buttons_never_issued_are_answered_quietly(standins: StandIns, app: App) -> None:
    standins.telegram.send_update(
        {
            "callback_query": {
                "id": "forged-1",
                "from": {"id": IVAN, "is_bot": False, "first_name": "Ivan"},
                "chat_instance": "x",
                "data": "delete_everything",
            }
        }
    )
    await standins.telegram.wait_for_call(
        "answerCallbackQuery", lambda call: call.params.get("callback_query_id") == "forged-1"
    )
    assert standins.telegram.bot_messages(IVAN) == []


async def test_operators_are_not_held_back_by_flood_control(standins: StandIns, app: App) -> None:
    for _ in range(15):
        standins.telegram.send_message(OPERATOR_ID, "/help")
    operator = Person(standins.telegram, OPERATOR_ID)
    for _ in range(15):
        await operator.reply()
    assert not any("слишком часто" in text for text in operator.texts())

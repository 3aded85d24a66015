"""Route tests: updates fed straight into the real Dispatcher (no polling); the Bot still talks
to the Telegram stand-in over HTTP, the GetCourse directory is an in-process fake."""

from __future__ import annotations

from services.storage.outbox import OutboxRepository
from tests.conftest import StandIns
from tests.routing import USER, Routed, routed_for


async def test_start_asks_for_email_and_waits_for_it(routed: Routed) -> None:
    await routed.feed("/start")
    assert "email" in routed.replies()[-1]
    assert await routed.state() == "LinkDialog:waiting_email"


async def test_email_links_and_queues_salebot_write(routed: Routed) -> None:
    await routed.feed("/start")
    await routed.feed("IVAN@example.com")
    assert routed.directory.asked == ["ivan@example.com"]
    assert "Готово" in routed.replies()[-1]
    assert await routed.state() is None
    pending = await OutboxRepository(routed.database).pending_for(USER)
    assert pending is not None
    assert pending.variables == {
        "client.email": "ivan@example.com",
        "client.gc_user_id": "42",
        "client.telegram_id": str(USER),
    }


async def test_same_email_again_costs_no_lookup(routed: Routed) -> None:
    await routed.feed("ivan@example.com")
    await routed.feed("/email")
    await routed.feed("Ivan@Example.com")
    assert routed.directory.asked == ["ivan@example.com"]
    assert "уже привязан" in routed.replies()[-1]


async def test_linked_person_typing_text_is_told_how_to_change(routed: Routed) -> None:
    await routed.feed("ivan@example.com")
    await routed.feed("anna@example.org")  # not in a dialog: no second lookup
    assert routed.directory.asked == ["ivan@example.com"]
    assert "/email" in routed.replies()[-1]
    assert "i***@example.com" in routed.replies()[-1]


async def test_cancel_leaves_the_dialog(routed: Routed) -> None:
    await routed.feed("/start")
    await routed.feed("/cancel")
    assert await routed.state() is None
    assert "/start" in routed.replies()[-1]


async def test_unknown_command(routed: Routed) -> None:
    await routed.feed("/frobnicate")
    assert "Такой команды нет" in routed.replies()[-1]
    assert routed.directory.asked == []


async def test_group_chats_are_not_handled(routed: Routed) -> None:
    await routed.feed("/start", chat_type="group", chat_id=-5)
    await routed.feed("ivan@example.com", chat_type="group", chat_id=-5)
    assert routed.replies(-5) == []
    assert routed.directory.asked == []


async def test_unexpected_failure_gets_polite_answer(routed: Routed) -> None:
    routed.directory.failure = RuntimeError("boom")
    await routed.feed("ivan@example.com")
    assert "Что-то пошло не так" in routed.replies()[-1]
    assert await OutboxRepository(routed.database).pending_count() == 0


async def test_english_texts(standins: StandIns) -> None:
    async for routed in routed_for(standins, bot_language="en"):
        await routed.feed("/start")
        assert "the email you use to sign in to GetCourse" in routed.replies()[-1]
        await routed.feed("nobody@example.com")
        assert "could not find" in routed.replies()[-1]

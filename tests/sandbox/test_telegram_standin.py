"""The Telegram stand-in, driven by a real aiogram Bot over HTTP on loopback."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
)

from sandbox.server import Fault
from sandbox.telegram import TelegramStandIn
from tests.sandbox.conftest import TOKEN, make_bot

USER = 555000111


def keyboard(*buttons: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=text, callback_data=data)] for text, data in buttons
        ]
    )


async def test_get_me_returns_the_bot(bot: Bot) -> None:
    me = await bot.get_me()

    assert (me.id, me.is_bot, me.username, me.first_name) == (
        7000000001,
        True,
        "school_support_bot",
        "School Support",
    )


async def test_wrong_token_is_unauthorized(tg: TelegramStandIn) -> None:
    other = make_bot(tg, token="42:wrong")
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await other.get_me()
    finally:
        await other.session.close()
    assert tg.calls[-1].status == 401


async def test_unknown_method_is_not_found(tg: TelegramStandIn) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{tg.base_url}/bot{TOKEN}/sendHologram", json={"chat_id": 1}) as response,
    ):
        assert response.status == 404
        assert await response.json() == {
            "ok": False,
            "error_code": 404,
            "description": "Not Found",
        }


@pytest.mark.parametrize("encoding", ["query", "urlencoded", "json"])
async def test_other_request_encodings_are_accepted(tg: TelegramStandIn, encoding: str) -> None:
    markup = '{"inline_keyboard": [[{"text": "Ок", "callback_data": "ok"}]]}'
    fields = {"chat_id": str(USER), "text": "123", "reply_markup": markup}
    url = f"{tg.base_url}/bot{TOKEN}/sendMessage"
    async with aiohttp.ClientSession() as http:
        if encoding == "query":
            request = http.get(url, params=fields)
        elif encoding == "urlencoded":
            request = http.post(url, data=fields)
        else:
            request = http.post(
                url, json={**fields, "chat_id": USER, "reply_markup": json.loads(markup)}
            )
        async with request as response:
            body = await response.json()

    assert body["ok"] is True
    assert body["result"]["text"] == "123"  # a string parameter is never JSON-decoded
    [stored] = tg.bot_messages(USER)
    assert (stored.text, stored.buttons()) == ("123", [("Ок", "ok")])
    assert tg.calls[-1].params["chat_id"] == USER


async def test_user_message_arrives_through_get_updates(tg: TelegramStandIn, bot: Bot) -> None:
    sent = tg.send_message(USER, "Привет", username="ivan")

    updates = await bot.get_updates(timeout=0)

    assert len(updates) == 1
    message = updates[0].message
    assert message is not None
    assert message.text == "Привет"
    assert message.message_id == sent["message_id"]
    assert message.chat.id == USER
    assert message.chat.type == "private"
    assert message.from_user is not None
    assert (message.from_user.id, message.from_user.username) == (USER, "ivan")


async def test_media_wrappers_validate_as_aiogram_messages(tg: TelegramStandIn, bot: Bot) -> None:
    tg.send_photo(USER, caption="скрин")
    tg.send_sticker(USER)
    tg.send_voice(USER)
    tg.send_message(USER, contact={"phone_number": "+79990000000", "first_name": "Ivan"})

    messages = [update.message for update in await bot.get_updates(timeout=0)]

    assert all(message is not None for message in messages)
    photo, sticker, voice, contact = (m for m in messages if m is not None)
    assert photo.photo is not None
    assert photo.caption == "скрин"
    assert sticker.sticker is not None
    assert sticker.sticker.type == "regular"
    assert voice.voice is not None
    assert voice.voice.duration > 0
    assert contact.contact is not None
    assert contact.contact.phone_number == "+79990000000"


async def test_long_poll_returns_when_a_message_arrives(tg: TelegramStandIn, bot: Bot) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await tg.wait_for_poll()

    tg.send_message(USER, "ты тут?")
    updates = await asyncio.wait_for(poll, timeout=10)

    assert [u.message.text for u in updates if u.message] == ["ты тут?"]


async def test_offset_confirms_updates(tg: TelegramStandIn, bot: Bot) -> None:
    tg.send_message(USER, "один")
    tg.send_message(USER, "два")
    first, second = await bot.get_updates(timeout=0)

    after_first = await bot.get_updates(offset=first.update_id + 1, timeout=0)
    still_pending = await bot.get_updates(timeout=0)
    after_all = await bot.get_updates(offset=second.update_id + 1, timeout=0)

    assert [u.update_id for u in after_first] == [second.update_id]
    assert [u.update_id for u in still_pending] == [second.update_id]
    assert after_all == []


async def test_allowed_updates_filters_update_types(tg: TelegramStandIn, bot: Bot) -> None:
    tg.send_message(USER, "текст")
    sent = tg.send_message(USER, "опечатка")
    tg.edit_message(USER, sent["message_id"], "исправлено")

    updates = await bot.get_updates(timeout=0, allowed_updates=["edited_message"])

    assert len(updates) == 1
    assert updates[0].edited_message is not None
    assert updates[0].edited_message.text == "исправлено"


async def test_sent_message_is_stored_with_buttons(tg: TelegramStandIn, bot: Bot) -> None:
    tg.send_message(USER, "/start")

    returned = await bot.send_message(
        USER, "Выберите:", reply_markup=keyboard(("Да", "yes"), ("Нет", "no"))
    )

    [stored] = tg.bot_messages(USER)
    assert stored.message_id == returned.message_id == 2  # the user's /start was #1
    assert stored.text == "Выберите:"
    assert stored.buttons() == [("Да", "yes"), ("Нет", "no")]
    assert returned.reply_markup is not None
    assert [b.callback_data for row in returned.reply_markup.inline_keyboard for b in row] == [
        "yes",
        "no",
    ]
    assert returned.from_user is not None
    assert returned.from_user.is_bot
    call = tg.calls_of("sendMessage")[-1]
    assert call.params["chat_id"] == USER
    assert call.params["text"] == "Выберите:"
    assert call.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "yes"
    assert call.status == 200


async def test_edit_changes_current_text_and_identical_edit_is_rejected(
    tg: TelegramStandIn, bot: Bot
) -> None:
    sent = await bot.send_message(USER, "Загрузка…", reply_markup=keyboard(("Ок", "ok")))

    await bot.edit_message_text(
        text="Готово", chat_id=USER, message_id=sent.message_id, reply_markup=keyboard(("Ок", "ok"))
    )
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            text="Готово",
            chat_id=USER,
            message_id=sent.message_id,
            reply_markup=keyboard(("Ок", "ok")),
        )
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text(text="x", chat_id=USER, message_id=999)

    [stored] = tg.bot_messages(USER)
    assert (stored.text, stored.edits) == ("Готово", 1)
    assert stored.buttons() == [("Ок", "ok")]


async def test_wait_for_message_sees_edits(tg: TelegramStandIn, bot: Bot) -> None:
    sent = await bot.send_message(USER, "Проверяю…")
    waiter = asyncio.create_task(tg.wait_for_message(USER, lambda m: m.text == "Найдено"))

    await bot.edit_message_text(text="Найдено", chat_id=USER, message_id=sent.message_id)

    found = await waiter
    assert (found.message_id, found.edits) == (sent.message_id, 1)


async def test_wait_for_message_timeout_lists_the_chat(tg: TelegramStandIn, bot: Bot) -> None:
    await bot.send_message(USER, "что-то другое")

    with pytest.raises(AssertionError, match="что-то другое"):
        await tg.wait_for_message(USER, lambda m: m.text == "нужное", timeout=0.05)


async def test_fail_next_429_raises_retry_after(tg: TelegramStandIn, bot: Bot) -> None:
    tg.fail_next("sendMessage", retry_after=7)

    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(USER, "раз")
    await bot.send_message(USER, "два")

    assert caught.value.retry_after == 7
    assert [call.status for call in tg.calls_of("sendMessage")] == [429, 200]
    assert [m.text for m in tg.bot_messages(USER)] == ["два"]


async def test_raw_fault_answers_server_error(tg: TelegramStandIn, bot: Bot) -> None:
    tg.faults.add("getMe", Fault(status=500, json_body={"ok": False, "description": "boom"}))

    with pytest.raises(TelegramServerError):
        await bot.get_me()
    assert (await bot.get_me()).is_bot


async def test_blocked_user_is_forbidden(tg: TelegramStandIn, bot: Bot) -> None:
    tg.block_user(USER)

    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(USER, "привет")
    tg.unblock_user(USER)
    await bot.send_message(USER, "привет")

    assert [m.text for m in tg.bot_messages(USER)] == ["привет"]


async def test_send_document_keeps_the_upload(tg: TelegramStandIn, bot: Bot) -> None:
    content = "email;name\nivan@example.com;Иван\n".encode()

    returned = await bot.send_document(
        USER, BufferedInputFile(content, filename="report.csv"), caption="Отчёт"
    )

    [stored] = tg.bot_messages(USER)
    assert stored.caption == "Отчёт"
    assert stored.document is not None
    upload = tg.files[stored.document["file_id"]]
    assert (upload.file_name, upload.mime_type, upload.content) == (
        "report.csv",
        "text/csv",
        content,
    )
    assert returned.document is not None
    assert returned.document.file_name == "report.csv"
    assert returned.document.file_size == len(content)


async def test_send_photo_keeps_the_upload_with_its_size(tg: TelegramStandIn, bot: Bot) -> None:
    # The smallest valid PNG header: signature, then an IHDR chunk for a 3 x 2 image.
    content = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIHDR" + b"\x00\x00\x00\x03\x00\x00\x00\x02"

    returned = await bot.send_photo(
        USER, BufferedInputFile(content, filename="chart.png"), caption="График"
    )

    [stored] = tg.bot_messages(USER)
    assert stored.caption == "График"
    assert stored.photo is not None
    [size] = stored.photo
    assert (size["width"], size["height"], size["file_size"]) == (3, 2, len(content))
    assert tg.files[size["file_id"]].content == content
    assert returned.photo is not None
    assert returned.photo[-1].file_id == size["file_id"]


async def test_webhook_blocks_get_updates_until_deleted(tg: TelegramStandIn, bot: Bot) -> None:
    tg.send_message(USER, "старое")
    await bot.set_webhook("https://example.invalid/hook", secret_token="s3cret")

    with pytest.raises(TelegramConflictError):
        await bot.get_updates(timeout=0)
    info = await bot.get_webhook_info()
    await bot.delete_webhook(drop_pending_updates=True)

    assert info.url == "https://example.invalid/hook"
    assert info.pending_update_count == 1
    assert tg.webhook is None
    assert await bot.get_updates(timeout=0) == []


async def test_commands_are_kept_per_scope(tg: TelegramStandIn, bot: Bot) -> None:
    private = BotCommandScopeAllPrivateChats()
    await bot.set_my_commands([BotCommand(command="start", description="Начать")], scope=private)

    assert await bot.get_my_commands() == []
    assert [c.command for c in await bot.get_my_commands(scope=private)] == ["start"]
    assert tg.commands({"type": "all_private_chats"}) == [
        {"command": "start", "description": "Начать"}
    ]
    await bot.delete_my_commands(scope=private)
    assert await bot.get_my_commands(scope=private) == []


async def test_press_button_produces_a_callback_query(tg: TelegramStandIn, bot: Bot) -> None:
    sent = await bot.send_message(USER, "Подтвердите", reply_markup=keyboard(("Да", "confirm")))

    query_id = tg.press_button(USER, sent.message_id, "confirm")
    [update] = await bot.get_updates(timeout=0)
    await bot.answer_callback_query(query_id, text="Принято")

    query = update.callback_query
    assert query is not None
    assert (query.id, query.data, query.from_user.id) == (query_id, "confirm", USER)
    assert query.message is not None
    assert query.message.message_id == sent.message_id
    assert query.message.chat.id == USER
    assert tg.answered_callbacks[query_id].text == "Принято"
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query_id)
    with pytest.raises(ValueError, match="no button"):
        tg.press_button(USER, sent.message_id, "forged")


async def test_stop_releases_a_pending_long_poll() -> None:
    tg = TelegramStandIn(token=TOKEN)
    await tg.start()
    other = make_bot(tg)
    try:
        poll = asyncio.create_task(other.get_updates(timeout=30))
        await tg.wait_for_poll()
        await tg.stop()
        assert await asyncio.wait_for(poll, timeout=10) == []
    finally:
        await other.session.close()


async def test_http_control_endpoints(tg: TelegramStandIn, bot: Bot) -> None:
    control = f"{tg.base_url}/sandbox"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{control}/users/{USER}/messages", json={"text": "/start"}) as r:
            assert r.status == 200
            assert (await r.json())["text"] == "/start"
        [update] = await bot.get_updates(timeout=0)
        assert update.message is not None
        assert update.message.text == "/start"

        sent = await bot.send_message(USER, "Меню", reply_markup=keyboard(("Помощь", "help")))
        async with http.get(f"{control}/chats/{USER}/messages") as r:
            [message] = await r.json()
        assert (message["message_id"], message["text"]) == (sent.message_id, "Меню")
        assert message["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "help"

        payload = {"message_id": sent.message_id, "data": "help"}
        async with http.post(f"{control}/users/{USER}/callbacks", json=payload) as r:
            query_id = (await r.json())["callback_query_id"]
        async with http.post(f"{control}/users/{USER}/callbacks", json={"data": "x"}) as r:
            assert r.status == 400
        async with http.get(f"{control}/calls") as r:
            calls = await r.json()

    [callback] = await bot.get_updates(offset=update.update_id + 1, timeout=0)
    assert callback.callback_query is not None
    assert callback.callback_query.id == query_id
    assert [c["method"] for c in calls] == ["getUpdates", "sendMessage"]
    assert calls[1]["params"]["chat_id"] == USER

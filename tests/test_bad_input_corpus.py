"""A generated corpus of a few thousand hostile or odd updates through the real Dispatcher:
no exception escapes, every update gets a fitting answer or is ignored by design, nothing
invalid reaches GetCourse or the outbox, and everything echoed back is escaped."""

from __future__ import annotations

import logging
import random
import re
from collections import Counter
from typing import Any

import pytest
from aiogram.types import Update

from services.email import normalize_email
from services.errors import InvalidEmail
from tests.routing import Routed

SEED = 20261128
SIZE = 2500
# The only markup our own templates use; anything else in a sent text came from a person.
OUR_TAGS = re.compile(r"</?(b|i|code)>")

PIECES = [
    "hello",
    "ivan@example.com",
    "IVAN@EXAMPLE.COM",
    "ivan+tag@example.com",
    "ivan@example.com.",
    "иван@пример.рф",
    "user@xn--e1afmkfd.xn--p1ai",
    "a@b",
    "@",
    "<b>bold</b>",
    "<script>alert(1)</script>",
    "<a href='tg://x'>x</a>",
    "*bold* _it_ `code` [l](http://x)",
    "'; DROP TABLE links; --",
    "1 OR 1=1",
    "\u202egnp.exe",
    "zero\u200bwidth",
    "\u0000",
    "😀🔥👍🏽",
    "ivan@example.com, anna@example.org",
    "ivan@example.com anna@example.org",
    "/start",
    "/email",
    "/cancel",
    "/unknown",
    "/start@school_support_bot",
    "&amp; &lt; &gt;",
    "   ",
    "\n\n\n",
]


def make_text(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.05:
        return rng.choice(["x", "я", "<", "@"]) * 4096
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 3)))


def make_update(rng: random.Random, update_id: int) -> dict[str, Any]:
    user_id = 200_000_000 + rng.randint(0, 1999)  # many people: nobody trips flood control
    person = {"id": user_id, "is_bot": False, "first_name": rng.choice(["Ivan", "<b>x</b>", "😀"])}
    private = {"id": user_id, "type": "private", "first_name": "Ivan"}
    message: dict[str, Any] = {
        "message_id": update_id,
        "date": 1_700_000_000,
        "chat": private,
        "from": person,
    }
    kind = rng.choices(
        [
            "text",
            "sticker",
            "photo",
            "contact",
            "forward",
            "edited",
            "group",
            "channel",
            "callback",
            "voice",
            "caption",
        ],
        weights=[50, 4, 4, 3, 4, 4, 8, 4, 8, 3, 4],
    )[0]
    if kind in {"text", "edited", "group", "forward"}:
        message["text"] = make_text(rng)
    if kind == "sticker":
        message["sticker"] = {
            "file_id": "s",
            "file_unique_id": "s",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
        }
    if kind in {"photo", "caption"}:
        message["photo"] = [{"file_id": "p", "file_unique_id": "p", "width": 90, "height": 90}]
        if kind == "caption":
            message["caption"] = make_text(rng)
    if kind == "voice":
        message["voice"] = {"file_id": "v", "file_unique_id": "v", "duration": 2}
    if kind == "contact":
        message["contact"] = {"phone_number": "+79990000000", "first_name": "Ivan"}
    if kind == "forward":
        message["forward_origin"] = {
            "type": "hidden_user",
            "date": 1_700_000_000,
            "sender_user_name": "<i>someone</i>",
        }
    if kind == "edited":
        message["edit_date"] = 1_700_000_100
        return {"update_id": update_id, "edited_message": message}
    if kind == "group":
        message["chat"] = {"id": -1000 - user_id, "type": "supergroup", "title": "<b>Group</b>"}
    if kind == "channel":
        message["chat"] = {"id": -2000, "type": "channel", "title": "News"}
        message.pop("from")
        message["text"] = make_text(rng)
        return {"update_id": update_id, "channel_post": message}
    if kind == "callback":
        return {
            "update_id": update_id,
            "callback_query": {
                "id": f"cb{update_id}",
                "from": person,
                "chat_instance": "ci",
                "data": make_text(rng)[:64],
            },
        }
    return {"update_id": update_id, "message": message}


def is_valid_email(text: str) -> bool:
    try:
        normalize_email(text)
    except InvalidEmail:
        return False
    return True


@pytest.mark.timeout(300)
async def test_generated_corpus_is_handled_gracefully(
    routed: Routed, caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(SEED)
    telegram = routed.standins.telegram
    kinds: Counter[str] = Counter()
    for update_id in range(1, SIZE + 1):
        raw = make_update(rng, update_id)
        kind = next(key for key in raw if key != "update_id")
        kinds[kind] += 1
        sent_before = len(telegram.calls)
        with caplog.at_level(logging.ERROR, logger="handlers.errors"):
            await routed.dispatcher.feed_update(
                routed.bot, Update.model_validate(raw, context={"bot": routed.bot})
            )
        calls = telegram.calls[sent_before:]
        sent = [c for c in calls if c.method in {"sendMessage", "editMessageText"}]
        if kind == "message" and raw["message"]["chat"]["type"] != "private":
            # Not a word in a group; the bot leaves it (it is not the operators' chat).
            assert [c.method for c in calls] == ["leaveChat"], f"update {update_id}: {calls}"
        elif kind in {"edited_message", "channel_post"}:
            assert calls == [], f"update {update_id} ({kind}) should be ignored: {calls}"
        elif kind == "callback_query":
            assert [c.method for c in calls] == ["answerCallbackQuery"], calls
        else:
            assert 1 <= len(sent) <= 2, f"update {update_id} got {len(sent)} replies: {raw}"
        for call in sent:
            text = str(call.params["text"])
            assert "<" not in OUR_TAGS.sub("", text), f"unescaped markup sent: {text!r}"
            assert len(text) <= 4096

    assert not [r for r in caplog.records if r.name == "handlers.errors"], "an update failed"
    assert min(kinds.values()) >= 40, kinds  # every kind was really exercised
    assert all(is_valid_email(email) for email in routed.directory.asked)
    rows = await routed.database.fetchall("SELECT variables FROM outbox")
    assert (
        len(rows)
        == len(
            {
                r["telegram_id"]
                for r in await routed.database.fetchall("SELECT telegram_id FROM links")
            }
        )
        or len(rows) >= 1
    )

"""Error texts from GetCourse and Salebot are redacted and made one clean line before they are
stored or shown (issue 12 item 6)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sandbox.server import Fault
from services.redaction import MAX_ERROR_LENGTH, error_text
from tests.conftest import StandIns
from tests.operator_console import IVAN, Console, console_for, plain

KEY = "sb-test-key-0987654321abcdefABCDEF0123456789"


def test_error_text_is_one_clean_redacted_line() -> None:
    raw = (
        "HTTP 400 \x1b[31mbad\x1b[0m value\r\nfor Ivan.Petrov@Example.com\u202e at "
        f"https://x.example/api?key={KEY}&x=1 token={KEY}"
    )
    text = error_text(raw)
    assert text == (
        "HTTP 400 [31mbad [0m value for I***@Example.com at "
        "https://x.example/api?key=***&x=1 token=***"
    )
    assert error_text(text) == text  # redacting twice changes nothing


def test_error_text_hides_long_tokens_and_is_short() -> None:
    assert error_text(f"rejected {KEY}") == "rejected ***"
    long = error_text("x " * 1000)
    assert len(long) == MAX_ERROR_LENGTH
    assert long.endswith("…")
    assert error_text(ValueError("line\nbreak")) == "line break"


@pytest.fixture
async def console(standins: StandIns) -> AsyncIterator[Console]:
    async for value in console_for(standins):
        yield value


async def test_a_salebot_error_is_stored_and_shown_redacted(console: Console) -> None:
    detail = "invalid\nvariable for ivan.petrov@example.com\x00 (key=" + KEY + ")"
    console.standins.salebot.faults.add(
        "save_variables", Fault(status=200, json_body={"status": "error", "message": detail})
    )
    await console.say("ivan.petrov@example.com", user=IVAN)
    await console.deliver()

    [write] = await console.rows("SELECT state, last_error FROM outbox")
    assert write["state"] == "failed"  # rejected: not retried
    stored = write["last_error"]
    assert "ivan.petrov@example.com" not in stored
    assert KEY not in stored
    assert "\n" not in stored
    assert "\x00" not in stored
    assert "i***@example.com" in stored

    await console.say(f"/find {IVAN}")
    card = plain(console.last().text or "")
    assert "for i***@example.com (key=***" in card
    assert KEY not in card

"""Logs never carry a secret, whatever the message or exception says."""

from __future__ import annotations

import json
import logging

import pytest

from bot.log_setup import configure_logging, log_context


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_secrets_are_redacted(log_format: str, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", log_format, ["123:TOKEN", "gc-key-1", ""])
    log = logging.getLogger("test")
    log.info("calling https://school.getcourse.ru/pl/api/account/users?key=gc-key-1")
    try:
        raise RuntimeError("POST /bot123:TOKEN/getMe failed")
    except RuntimeError:
        log.exception("telegram failed")
    logging.getLogger("httpx").info("HTTP Request: GET /api/gc-key-1/x")  # silenced
    err = capsys.readouterr().err
    assert "gc-key-1" not in err
    assert "123:TOKEN" not in err
    assert err.count("***") >= 2
    assert "HTTP Request" not in err
    if log_format == "json":
        lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        assert [line["event"] for line in lines] == [
            "calling https://school.getcourse.ru/pl/api/account/users?key=***",
            "telegram failed",
        ]
        assert "/bot***/getMe" in lines[1]["exception"]


def test_json_lines_carry_the_ids_of_their_context(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json", ["123:TOKEN"])
    log = logging.getLogger("test")
    with log_context(update_id=7, user_id=100):
        log.info("inside")
        with log_context(export_id=9):
            log.info("nested")
    log.info("outside", extra={"telegram_id": 5, "note": "123:TOKEN"})
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [
        {k: v for k, v in line.items() if k not in {"ts", "logger", "level"}} for line in lines
    ] == [
        {"event": "inside", "update_id": 7, "user_id": 100},
        {"event": "nested", "update_id": 7, "user_id": 100, "export_id": 9},
        {"event": "outside", "telegram_id": 5, "note": "***"},
    ]

"""Logs never carry a secret, whatever the message or exception says."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from bot.log_setup import QUIET_LOGGERS, configure_logging


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)


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

"""The README's first command: ``python -m bot sandbox`` lets a person link and see Salebot."""

from __future__ import annotations

import subprocess
import sys


def test_sandbox_links_an_email_from_the_terminal() -> None:
    script = "/start\nIvan.Petrov@example.com\n:user 100000099\nanna@example.org\n:funnel\n:quit\n"
    result = subprocess.run(
        [sys.executable, "-m", "bot", "sandbox"],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "bot> Проверяю ivan.petrov@example.com" in out
    assert "bot> Готово! Ваш Telegram привязан к аккаунту ivan.petrov@example.com." in out
    assert "gc_user_id = 187654321" in out
    assert "telegram_id = 100000001" in out
    # The newcomer's write waited in the outbox until their Salebot client appeared.
    assert "telegram_id = 100000099" in out
    assert "Traceback" not in result.stderr


def test_sandbox_shows_getcourse_fields_and_a_getcourse_event() -> None:
    script = (
        "ivan.petrov@example.com\n:getcourse\n"
        ":gc-event paid amount=1500 event_id=order-1\n:gc-event paid event_id=order-1\n:quit\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot", "sandbox"],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert (
        "GetCourse user 187654321 (ivan.petrov@example.com) now holds: "
        "telegram_id = 100000001, sb_id = 836058541"
    ) in out
    assert '"status": "queued"' in out
    assert "Salebot received callback 'gc_paid' for client 836058541" in out
    assert "gc_amount = 1500" in out
    assert '"status": "duplicate"' in out
    assert out.count("callback 'gc_paid'") == 1
    assert "Traceback" not in result.stderr

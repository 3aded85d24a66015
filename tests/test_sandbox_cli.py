"""The README's first command: ``python -m bot sandbox`` lets a person link and see Salebot."""

from __future__ import annotations

import subprocess
import sys


def test_sandbox_links_an_email_from_the_terminal() -> None:
    # Each proves the email is theirs: Ivan shares his phone, the newcomer types the emailed code.
    script = (
        "/start\nIvan.Petrov@example.com\n:contact\n"
        ":user 100000099\nanna@example.org\n:code\n:funnel\n:quit\n"
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
    assert "bot> Проверяю ivan.petrov@example.com" in out
    assert "bot> Готово! Ваш Telegram привязан к аккаунту ivan.petrov@example.com." in out
    assert "gc_user_id = 187654321" in out
    assert "telegram_id = 100000001" in out
    # The newcomer's write waited in the outbox until their Salebot client appeared.
    assert "telegram_id = 100000099" in out
    assert "mail> to anna@example.org: Sandbox School" in out  # the letter, code and all
    assert "Traceback" not in result.stderr

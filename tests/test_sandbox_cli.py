"""The README's first command: ``python -m bot sandbox`` lets a person link and see Salebot."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


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


def run_sandbox(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "sandbox", *args],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_sandbox_commands_help_saved_files_and_english() -> None:
    # :funnel with no write waiting answers at once (it used to wait out its 60 s deadline,
    # longer than this whole run may take).
    script = ":nope\n:funnel\n:user 900000001\n/stats\n:quit\n"
    result = run_sandbox(script, "--lang", "en")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "… no sandbox command :nope" in out
    assert out.count(":funnel      this user starts") == 2  # the greeting's help, then again
    assert "… the student started the Salebot funnel bot" in out
    saved = [line.split("[file] ", 1)[1] for line in out.splitlines() if "[file] " in line]
    assert saved, out
    chart = Path(saved[0])
    assert chart.read_bytes().startswith(b"\x89PNG")
    assert "Traceback" not in result.stderr


def test_sandbox_speaks_english_when_asked() -> None:
    # Ivan proves the email is his by sharing his phone (the sandbox asks for a proof).
    result = run_sandbox("/start\nivan.petrov@example.com\n:contact\n:quit\n", "--lang", "en")
    assert result.returncode == 0, result.stderr
    assert "bot> Done! Your Telegram is now linked to ivan.petrov@example.com." in result.stdout


def test_ctrl_c_leaves_at_once_and_quietly() -> None:
    pid, terminal = pty.fork()
    if pid == 0:  # the child: the sandbox on a terminal of its own
        os.execv(sys.executable, [sys.executable, "-m", "bot", "sandbox"])
    screen = b""
    deadline = time.monotonic() + 60
    while b"you> " not in screen and time.monotonic() < deadline:
        if select.select([terminal], [], [], 0.2)[0]:
            screen += os.read(terminal, 65536)
    assert b"you> " in screen, screen
    os.kill(pid, signal.SIGINT)
    status = 0
    while time.monotonic() < deadline:
        if select.select([terminal], [], [], 0.2)[0]:
            with contextlib.suppress(OSError):  # the terminal closes with the child
                screen += os.read(terminal, 65536)
        finished, status = os.waitpid(pid, os.WNOHANG)
        if finished:
            break
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the sandbox did not stop on Ctrl-C")
    assert os.waitstatus_to_exitcode(status) == 0
    assert b"Traceback" not in screen
    assert b"ERROR" not in screen


def test_sandbox_shows_getcourse_fields_and_a_getcourse_event() -> None:
    script = (
        "ivan.petrov@example.com\n:contact\n:getcourse\n"
        ":gc-event paid amount=1500 event_id=order-1\n:gc-event paid event_id=order-1\n:quit\n"
    )
    result = run_sandbox(script)
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

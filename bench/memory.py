"""Memory under many distinct senders: does the bot keep something for everyone who ever wrote?

    python bench/memory.py [--senders 100000] [--batch 200]

The real dispatcher (``create_dispatcher``: routers, middlewares, the SQLite dialog storage on a
fresh database) handles one ``/start`` from each of ``--senders`` distinct Telegram users,
``--batch`` at a time. Its Bot talks to no server: a session that answers every method at once
(a sent message, or ``True``), so the figure is the bot's own memory, not a network buffer.
Measured twice in one run, each in a fresh child process: with aiogram's
``SimpleEventIsolation`` (what the bot used before: a lock per chat, kept for ever) and with the
bot's ``PerChatIsolation``. Printed: RSS after the first 1,000 senders (warm) and after all of
them, the growth per 1,000 senders, and the locks the isolation still holds."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.methods import SendMessage, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import Chat, Message, Update, User

from bot.app import create_bot, create_dispatcher, create_services
from bot.settings import load_settings
from sandbox.demo import connection_settings

FIRST_USER = 500_000_000
# The bot talks to no server (``AnsweringSession``); the URLs it is given lead nowhere (port 9:
# discard).
NOWHERE = "http://127.0.0.1:9"
WARM = 1000


class AnsweringSession(BaseSession):
    """Every Bot API call succeeds at once, without a network."""

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109 - aiogram's signature
    ) -> TelegramType:
        if isinstance(method, SendMessage):
            chat = Chat(id=int(method.chat_id), type="private")
            sent = Message(message_id=1, date=0, chat=chat, text=method.text)
            return sent.as_(bot)  # type: ignore[return-value]
        return True  # type: ignore[return-value]

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,  # noqa: ASYNC109 - aiogram's signature
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        yield b""

    async def close(self) -> None:
        return None


def rss_mb() -> float:
    gc.collect()
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_from(user_id: int, update_id: int) -> Update:
    user = User(id=user_id, is_bot=False, first_name="Student", language_code="ru")
    message = Message(
        message_id=1,
        date=int(time.time()),
        chat=Chat(id=user_id, type="private"),
        from_user=user,
        text="/start",
        entities=[{"type": "bot_command", "offset": 0, "length": 6}],
    )
    return Update(update_id=update_id, message=message)


async def measure(isolation: str, senders: int, batch: int, folder: Path) -> dict[str, Any]:
    values = connection_settings(
        telegram_api_url=NOWHERE,
        getcourse_base_url=NOWHERE,
        salebot_base_url=NOWHERE,
        database_path=folder / f"{isolation}.sqlite3",
    )
    settings = load_settings(_env_file=None, **values)
    services = await create_services(settings)
    bot = create_bot(settings)
    bot.session = AnsweringSession()
    dispatcher = create_dispatcher(settings, services)
    if isolation == "simple":
        dispatcher.fsm.events_isolation = SimpleEventIsolation()
    warm = 0.0
    started = time.perf_counter()
    try:
        for first in range(0, senders, batch):
            users = range(first, min(first + batch, senders))
            await asyncio.gather(
                *(dispatcher.feed_update(bot, start_from(FIRST_USER + n, n + 1)) for n in users)
            )
            if first + batch == WARM:
                warm = rss_mb()
        after = rss_mb()
        locks = len(getattr(dispatcher.fsm.events_isolation, "_locks", {})) or getattr(
            dispatcher.fsm.events_isolation, "chats_in_progress", 0
        )
    finally:
        await services.close()
    return {
        "warm": warm,
        "after": after,
        "per_1000": (after - warm) / max(1, (senders - WARM) / 1000),
        "locks": locks,
        "seconds": time.perf_counter() - started,
    }


def in_child(isolation: str, senders: int, batch: int) -> dict[str, Any]:
    """One measurement in a fresh process, so neither run inherits the other's heap."""
    result = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            isolation,
            "--senders",
            str(senders),
            "--batch",
            str(batch),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--child", choices=["simple", "per-chat"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        with tempfile.TemporaryDirectory() as folder:
            figures = asyncio.run(measure(args.child, args.senders, args.batch, Path(folder)))
        print(json.dumps(figures))
        return
    rows = {name: in_child(name, args.senders, args.batch) for name in ("simple", "per-chat")}
    print(f"{args.senders} distinct senders, one /start each, {args.batch} at a time")
    print(f"{'isolation':<32}{'RSS warm':>10}{'RSS after':>11}{'MB/1000':>9}{'locks':>8}{'s':>7}")
    labels = {
        "simple": "aiogram SimpleEventIsolation",
        "per-chat": "PerChatIsolation (the bot)",
    }
    for name, row in rows.items():
        print(
            f"{labels[name]:<32}{row['warm']:>9.1f}M{row['after']:>10.1f}M"
            f"{row['per_1000']:>9.2f}{row['locks']:>8}{row['seconds']:>7.0f}"
        )


if __name__ == "__main__":
    main()

"""How the benchmarks read what their simulated people were answered. Imports nothing of the bot:
``firstday.py`` also runs it against a baseline tree."""

from __future__ import annotations

import asyncio
import time
from typing import Any

# The bot's answers to an email, by a word each holds, and what the figures call them.
ANSWERS = {"Готово": "linked", "Не нашёл": "not found", "не получается": "try later"}
TICK = 0.01


def answer_kind(text: str | None) -> str | None:
    """What an answer to an email said ("linked", "not found", "try later"), or ``None``."""
    return next((label for word, label in ANSWERS.items() if word in (text or "")), None)


async def watch_answers(
    telegram: Any, sent: dict[int, float], answers: dict[int, tuple[str, float]], people: int
) -> None:
    """Fill ``answers`` (person → kind, seconds since ``sent``) until ``people`` are answered.
    One watcher for everyone (a waiter per person would make the Telegram stand-in wake hundreds
    of them at every message, and the harness, not the bot, would set the pace); it looks every
    ``TICK`` seconds, which bounds the timing resolution."""
    while len(answers) < people:
        await asyncio.sleep(TICK)
        now = time.perf_counter()
        for user_id, at in list(sent.items()):
            if user_id in answers:
                continue
            kinds = (answer_kind(message.text) for message in telegram.bot_messages(user_id))
            kind = next((kind for kind in kinds if kind is not None), None)
            if kind is not None:
                answers[user_id] = (kind, now - at)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")

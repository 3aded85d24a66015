"""What no other router took: a button press is answered (so its spinner stops) and nothing
else happens. Included last."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery


def router() -> Router:
    router = Router(name="fallback")
    router.callback_query.register(on_stale_button)
    return router


async def on_stale_button(query: CallbackQuery) -> None:
    """A button of an old message, or data we never issued."""
    await query.answer()

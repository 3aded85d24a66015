"""What no other router took: a button press is answered (so its spinner stops) and nothing
else happens. Included last."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery, Message

from handlers.texts import Texts


def router() -> Router:
    router = Router(name="fallback")
    router.callback_query.register(on_stale_button)
    return router


async def on_stale_button(query: CallbackQuery, texts: Texts) -> None:
    """A button of a message too old to act on, or data we never issued."""
    if isinstance(query.message, Message):
        await query.answer()  # not for this person (an operator's button), or never ours
    else:
        # Telegram sends only a stub of a message old enough: say why nothing happens.
        await query.answer(texts.render("button_expired"), show_alert=True)

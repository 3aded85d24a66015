"""Inline keyboards and the callback data they carry."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup, KeyboardButton, ReplyKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from handlers.texts import Texts
from services.linking.ownership import ProofMethod

# The reply-keyboard button of each method: pressing it sends its text (or the contact).
PROOF_BUTTONS = {
    ProofMethod.CONTACT: "button_share_contact",
    ProofMethod.EMAIL_CODE: "button_new_code",
    ProofMethod.OPERATOR: "button_ask_support",
}


class ChangeEmail(CallbackData, prefix="change_email"):
    pass


def change_email_keyboard(texts: Texts) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=texts.render("button_change_email"), callback_data=ChangeEmail())
    return builder.as_markup()


class ForgetButton(CallbackData, prefix="forget"):
    confirm: bool


def forget_keyboard(texts: Texts) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for confirm, text in ((True, "button_forget_confirm"), (False, "button_forget_cancel")):
        builder.button(text=texts.render(text), callback_data=ForgetButton(confirm=confirm))
    return builder.as_markup()


def proof_keyboard(texts: Texts, methods: tuple[ProofMethod, ...]) -> ReplyKeyboardMarkup:
    """The same for every email: what is offered depends on the setup, never on GetCourse."""
    rows = [
        [
            KeyboardButton(
                text=texts.render(PROOF_BUTTONS[method]),
                request_contact=True if method is ProofMethod.CONTACT else None,
            )
        ]
        for method in methods
    ]
    return ReplyKeyboardMarkup(keyboard=rows, resize_keyboard=True, is_persistent=True)

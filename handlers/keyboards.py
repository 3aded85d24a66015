"""Inline keyboards and the callback data they carry."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from handlers.texts import Texts


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

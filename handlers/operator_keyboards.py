"""Inline keyboards of the operator console and the callback data they carry."""

from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from handlers.texts import Texts


class CardAction(StrEnum):
    RESYNC = "resync"
    UNLINK = "unlink"
    HISTORY = "history"


class CardButton(CallbackData, prefix="op_card"):
    action: CardAction
    telegram_id: int


class LinkButton(CallbackData, prefix="op_link"):
    confirm: bool
    telegram_id: int
    gc_user_id: str
    version: int  # Link.version of the link it replaces (0: none): confirms only that one


class UnlinkButton(CallbackData, prefix="op_unlink"):
    confirm: bool
    telegram_id: int
    version: int  # Link.version: a press removes only the link it was shown for


class EraseButton(CallbackData, prefix="op_erase"):
    confirm: bool
    telegram_id: int


class RetryAllButton(CallbackData, prefix="op_retry"):
    pass


class ProofButton(CallbackData, prefix="op_proof"):
    """An operator's answer to one proof (its ID: a newer request is another proof)."""

    confirm: bool
    proof_id: int


def card_keyboard(texts: Texts, telegram_id: int, *, linked: bool) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    if linked:
        builder.button(
            text=texts.render("button_resync"),
            callback_data=CardButton(action=CardAction.RESYNC, telegram_id=telegram_id),
        )
        builder.button(
            text=texts.render("button_unlink"),
            callback_data=CardButton(action=CardAction.UNLINK, telegram_id=telegram_id),
        )
    builder.button(
        text=texts.render("button_history"),
        callback_data=CardButton(action=CardAction.HISTORY, telegram_id=telegram_id),
    )
    return builder.as_markup()


def link_keyboard(
    texts: Texts, telegram_id: int, gc_user_id: str, version: int
) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for confirm, text in ((True, "button_link_confirm"), (False, "button_cancel")):
        builder.button(
            text=texts.render(text),
            callback_data=LinkButton(
                confirm=confirm, telegram_id=telegram_id, gc_user_id=gc_user_id, version=version
            ),
        )
    return builder.as_markup()


def unlink_keyboard(texts: Texts, telegram_id: int, version: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for confirm, text in ((True, "button_unlink_confirm"), (False, "button_cancel")):
        builder.button(
            text=texts.render(text),
            callback_data=UnlinkButton(confirm=confirm, telegram_id=telegram_id, version=version),
        )
    return builder.as_markup()


def erase_keyboard(texts: Texts, telegram_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for confirm, text in ((True, "button_erase_confirm"), (False, "button_cancel")):
        builder.button(
            text=texts.render(text),
            callback_data=EraseButton(confirm=confirm, telegram_id=telegram_id),
        )
    return builder.as_markup()


def retry_keyboard(texts: Texts) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=texts.render("button_retry_all"), callback_data=RetryAllButton())
    return builder.as_markup()


def proof_keyboard(texts: Texts, proof_id: int, *, can_confirm: bool) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    answers = ((True, "button_proof_confirm"), (False, "button_proof_refuse"))
    for confirm, text in answers:
        if confirm and not can_confirm:
            continue
        builder.button(
            text=texts.render(text), callback_data=ProofButton(confirm=confirm, proof_id=proof_id)
        )
    return builder.as_markup()

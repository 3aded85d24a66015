"""aiogram routers only: they call services and render the result with ``handlers.texts``."""

from __future__ import annotations

from aiogram import Router

from handlers import chats, errors, fallback, operators, proof, student


def get_routers() -> list[Router]:
    # Foreign groups first: the bot leaves them and answers nothing there. Then operators:
    # their router takes only operators' updates and passes everyone else's on untouched, so
    # to a student an operator command is just an unknown command.
    # The proof's steps (a contact, a code, its buttons) come before the student dialog, which
    # takes any other text as an email.
    return [
        errors.router(),
        chats.router(),
        operators.router(),
        proof.operator_router(),
        proof.router(),
        student.router(),
        fallback.router(),
    ]

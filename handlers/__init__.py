"""aiogram routers only: they call services and render the result with ``handlers.texts``."""

from __future__ import annotations

from aiogram import Router

from handlers import chats, errors, fallback, operators, student


def get_routers() -> list[Router]:
    # Foreign groups first: the bot leaves them and answers nothing there. Then operators:
    # their router takes only operators' updates and passes everyone else's on untouched, so
    # to a student an operator command is just an unknown command.
    return [
        errors.router(),
        chats.router(),
        operators.router(),
        student.router(),
        fallback.router(),
    ]

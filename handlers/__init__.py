"""aiogram routers only: they call services and render the result with ``handlers.texts``."""

from __future__ import annotations

from aiogram import Router

from handlers import errors, student


def get_routers() -> list[Router]:
    return [errors.router(), student.router()]

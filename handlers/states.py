"""The states of the student dialog (kept in the FSM storage, so they survive a restart)."""

from __future__ import annotations

from aiogram.fsm.state import State, StatesGroup


class LinkDialog(StatesGroup):
    waiting_email = State()
    proving = State()  # the email is looked up; the person is to prove it is theirs

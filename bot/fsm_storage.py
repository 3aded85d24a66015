"""aiogram FSM storage on the bot's SQLite database: a half-finished dialog survives a restart."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import (
    BaseStorage,
    DefaultKeyBuilder,
    KeyBuilder,
    StateType,
    StorageKey,
)

from services.storage.dialog_state import DialogStateRepository


class SQLiteStorage(BaseStorage):
    def __init__(
        self, repository: DialogStateRepository, key_builder: KeyBuilder | None = None
    ) -> None:
        self._repository = repository
        self._key_builder = key_builder or DefaultKeyBuilder(with_bot_id=True, with_destiny=True)

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        await self._repository.set_state(self._key_builder.build(key), value)

    async def get_state(self, key: StorageKey) -> str | None:
        return await self._repository.get_state(self._key_builder.build(key))

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        await self._repository.set_data(self._key_builder.build(key), dict(data))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        return await self._repository.get_data(self._key_builder.build(key))

    async def close(self) -> None:
        """The database belongs to the application, which closes it."""

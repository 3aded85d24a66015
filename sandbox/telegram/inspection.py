"""What a test can see of the stand-in: the bot's messages and API calls, its command menus,
whether it is polling, and waits for any of them (on change notifications, never by sleeping)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict, TypeVar, Unpack

from sandbox.telegram.bot_methods import BotMethods
from sandbox.telegram.changes import Changes
from sandbox.telegram.chats import Chats
from sandbox.telegram.records import ApiCall, SentMessage
from sandbox.telegram.updates import UpdateQueue

_T = TypeVar("_T")
Match = Callable[[_T], bool]  # what a wait_for_* method waits for
_WAIT_SECONDS = 10.0


class Waiting(TypedDict, total=False):
    """The options of the wait_for_* methods."""

    timeout: float  # seconds until an AssertionError saying what there is (default 10)
    after: int  # how many of the earliest messages (or calls) not to consider (default 0)


class Inspection:
    """The inspection side of :class:`~sandbox.telegram.TelegramStandIn` (which holds the state)."""

    calls: list[ApiCall]
    _chats: Chats
    _changes: Changes
    _updates: UpdateQueue
    _bot_methods: BotMethods

    def bot_messages(self, chat_id: int) -> list[SentMessage]:
        """Messages the bot sent to the chat, in order, as they are now (deleted ones flagged)."""
        return list(self._chats.bot_messages(chat_id))

    def calls_of(self, method: str) -> list[ApiCall]:
        return [call for call in self.calls if call.method.lower() == method.lower()]

    def commands(
        self, scope: dict[str, Any] | None = None, language_code: str = ""
    ) -> list[dict[str, Any]]:
        """Commands set for that scope and language (default scope, no language by default)."""
        return list(self._bot_methods.commands(scope, language_code))

    @property
    def updates_waiting(self) -> bool:
        """Updates the bot has not taken (acknowledged with a later offset) yet."""
        return bool(self._updates.pending)

    @property
    def polls_waiting(self) -> int:
        """How many getUpdates long polls are waiting for updates right now."""
        return self._updates.polls_waiting

    async def wait_for_message(
        self, chat_id: int, predicate: Match[SentMessage] | None = None, **wait: Unpack[Waiting]
    ) -> SentMessage:
        """The first of ``bot_messages(chat_id)[after:]`` matching ``predicate``, now or later.

        Messages are checked in their current state, so an edit can make one match.
        """
        timeout, after = wait.get("timeout", _WAIT_SECONDS), wait.get("after", 0)
        found = await self._first(
            lambda: self._chats.bot_messages(chat_id)[after:], predicate, timeout
        )
        if found is None:
            listing = "\n".join(
                f"  #{m.message_id} edits={m.edits}{' deleted' if m.deleted else ''}: "
                f"{m.text if m.text is not None else m.caption!r} {m.buttons() or ''}"
                for m in self._chats.bot_messages(chat_id)
            )
            raise AssertionError(
                f"no matching bot message in chat {chat_id} (after #{after}) within {timeout}s; "
                f"the chat has:\n{listing or '  nothing'}"
            )
        return found

    async def wait_for_call(
        self, method: str, predicate: Match[ApiCall] | None = None, **wait: Unpack[Waiting]
    ) -> ApiCall:
        """The first of ``calls[after:]`` of ``method`` matching ``predicate``, now or later."""
        timeout, after = wait.get("timeout", _WAIT_SECONDS), wait.get("after", 0)

        def matches(call: ApiCall) -> bool:
            return call.method.lower() == method.lower() and (predicate is None or predicate(call))

        found = await self._first(lambda: self.calls[after:], matches, timeout)
        if found is None:
            seen = [call.method for call in self.calls[after:]]
            raise AssertionError(f"no matching {method} call within {timeout}s; calls: {seen}")
        return found

    async def wait_for_poll(self, timeout: float = _WAIT_SECONDS) -> None:  # noqa: ASYNC109
        """Until the bot has a getUpdates long poll waiting (it is up and listening)."""
        if await self._changes.first(lambda: self._updates.polls_waiting or None, timeout) is None:
            raise AssertionError(f"the bot did not long-poll getUpdates within {timeout}s")

    async def _first(
        self, items: Callable[[], list[_T]], predicate: Match[_T] | None, within: float
    ) -> _T | None:
        """The first of ``items()`` matching ``predicate``, once there is one."""
        return await self._changes.first(
            lambda: next((i for i in items() if predicate is None or predicate(i)), None), within
        )

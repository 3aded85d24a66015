"""The chats, users and messages the stand-in's Telegram holds: who wrote, in which chat,
what the bot sent there and how each of its messages stands now."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sandbox.telegram.records import SentMessage


def user_record(
    user_id: int, first_name: str, username: str | None, language: str | None
) -> dict[str, Any]:
    """The Bot API User object of a person."""
    user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
    if username is not None:
        user["username"] = username
    if language is not None:
        user["language_code"] = language
    return user


def inline_markup(markup: dict[str, Any] | None) -> dict[str, Any] | None:
    """Only inline keyboards belong to a message; reply keyboards live on the client."""
    return markup if markup is not None and "inline_keyboard" in markup else None


class Chats:
    """Chats by id, the people met so far and the messages on both sides."""

    def __init__(self, bot_user: dict[str, Any]) -> None:
        self._bot_user = bot_user
        self._chats: dict[int, dict[str, Any]] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self.user_messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.blocked: set[int] = set()  # people who blocked the bot
        self._last_message_id: defaultdict[int, int] = defaultdict(int)
        self._history: defaultdict[int, list[SentMessage]] = defaultdict(list)

    def chat(self, chat_id: int) -> dict[str, Any]:
        """The chat with that id, created on first use (positive ids are private chats)."""
        chat = self._chats.get(chat_id)
        if chat is None:
            if chat_id > 0:
                chat = {"id": chat_id, "type": "private", "first_name": f"User {chat_id}"}
            else:
                kind = "supergroup" if str(chat_id).startswith("-100") else "group"
                chat = {"id": chat_id, "type": kind, "title": f"Chat {chat_id}"}
            self._chats[chat_id] = chat
        return chat

    def written_in(
        self, chat_id: int, chat_type: str, first_name: str, username: str | None
    ) -> dict[str, Any]:
        """The chat a person writes in: their private chat (as they now present themselves),
        or a group kept as it was first seen."""
        if chat_type == "private":
            chat: dict[str, Any] = {"id": chat_id, "type": "private", "first_name": first_name}
            if username is not None:
                chat["username"] = username
        else:
            chat = self._chats.get(chat_id) or {
                "id": chat_id,
                "type": chat_type,
                "title": f"Test {chat_type}",
            }
        self._chats[chat_id] = chat
        return chat

    def next_message_id(self, chat_id: int) -> int:
        self._last_message_id[chat_id] += 1
        return self._last_message_id[chat_id]

    def bot_messages(self, chat_id: int) -> list[SentMessage]:
        """What the bot sent to the chat, in order, as it stands now (deleted ones flagged)."""
        return self._history.get(chat_id, [])

    def find_bot_message(self, chat_id: int, message_id: int) -> SentMessage | None:
        return next(
            (
                message
                for message in self.bot_messages(chat_id)
                if message.message_id == message_id and not message.deleted
            ),
            None,
        )

    def store(self, message: SentMessage) -> SentMessage:
        """Put a new message or a new version of an existing one into the chat history."""
        history = self._history[message.chat_id]
        for index, old in enumerate(history):
            if old.message_id == message.message_id:
                history[index] = message
                return message
        history.append(message)
        return message

    def payload(self, message: SentMessage) -> dict[str, Any]:
        """The Bot API Message object for a bot message."""
        payload: dict[str, Any] = {
            "message_id": message.message_id,
            "date": message.date,
            "chat": dict(self.chat(message.chat_id)),
            "from": {
                key: self._bot_user[key] for key in ("id", "is_bot", "first_name", "username")
            },
        }
        optional = {
            "text": message.text,
            "caption": message.caption,
            "document": message.document,
            "photo": message.photo,
            "edit_date": message.edit_date,
            "reply_markup": inline_markup(message.reply_markup),
        }
        payload.update({key: value for key, value in optional.items() if value is not None})
        return payload

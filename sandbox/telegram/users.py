"""What the people on the stand-in's Telegram do: write (text, photos, stickers, voice), edit
what they wrote, press the bot's buttons, block it. Each action becomes an update for the bot.

The actions only enqueue, so they are synchronous and can be called from anywhere on the
stand-in's event loop."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sandbox.telegram.chats import Chats, user_record
from sandbox.telegram.files import FileStore
from sandbox.telegram.records import unix_now
from sandbox.telegram.updates import UpdateQueue
from sandbox.telegram.webhook import WebhookPusher


class UserActions:
    """The user side of :class:`~sandbox.telegram.TelegramStandIn` (which holds the state)."""

    _chats: Chats
    _files: FileStore
    _updates: UpdateQueue
    _webhook: WebhookPusher
    _open_callbacks: set[str]
    _ids: Iterator[int]

    def send_update(self, update: dict[str, Any]) -> int:
        """Enqueue a raw update for getUpdates, or for the webhook while one is set; assigns
        ``update_id`` when missing."""
        update_id = self._updates.add(update)
        self._webhook.ensure_running()
        return update_id

    def send_message(
        self,
        user_id: int,
        text: str | None = None,
        *,
        chat_id: int | None = None,
        chat_type: str = "private",
        first_name: str = "Test",
        username: str | None = None,
        language_code: str | None = "ru",
        **message_fields: Any,
    ) -> dict[str, Any]:
        """A user writes to the bot (their private chat unless ``chat_id`` is given).

        ``message_fields`` go into the Message as they are (photo, contact, entities...).
        """
        user = user_record(user_id, first_name, username, language_code)
        self._chats.users[user_id] = user
        target = user_id if chat_id is None else chat_id
        chat = self._chats.written_in(target, chat_type, first_name, username)
        message: dict[str, Any] = {
            "message_id": self._chats.next_message_id(target),
            "date": unix_now(),
            "chat": dict(chat),
            "from": dict(user),
        }
        if text is not None:
            message["text"] = text
        message.update(message_fields)
        self._chats.user_messages[(target, message["message_id"])] = message
        self.send_update({"message": message})
        return message

    def send_photo(
        self, user_id: int, *, caption: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        file_id, unique_id = self._files.new_ids("AgAC")
        sizes = [
            {
                "file_id": f"{file_id}-{width}",
                "file_unique_id": f"{unique_id}-{width}",
                "width": width,
                "height": width * 3 // 4,
                "file_size": width * 40,
            }
            for width in (90, 320, 800)
        ]
        if caption is not None:
            kwargs["caption"] = caption
        return self.send_message(user_id, photo=sizes, **kwargs)

    def send_sticker(self, user_id: int, *, emoji: str = "👍", **kwargs: Any) -> dict[str, Any]:
        file_id, unique_id = self._files.new_ids("CAAC")
        sticker = {
            "file_id": file_id,
            "file_unique_id": unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
        }
        return self.send_message(user_id, sticker=sticker, **kwargs)

    def send_voice(self, user_id: int, *, duration: int = 3, **kwargs: Any) -> dict[str, Any]:
        file_id, unique_id = self._files.new_ids("AwAC")
        voice = {
            "file_id": file_id,
            "file_unique_id": unique_id,
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": duration * 2000,
        }
        return self.send_message(user_id, voice=voice, **kwargs)

    def edit_message(
        self, user_id: int, message_id: int, text: str, *, chat_id: int | None = None
    ) -> dict[str, Any]:
        """The user edits a message they sent earlier: enqueues an ``edited_message`` update."""
        key = (user_id if chat_id is None else chat_id, message_id)
        original = self._chats.user_messages.get(key)
        if original is None or original["from"]["id"] != user_id:
            raise LookupError(f"user {user_id} has no message {message_id} in chat {key[0]}")
        edited = {**original, "text": text, "edit_date": unix_now()}
        self._chats.user_messages[key] = edited
        self.send_update({"edited_message": edited})
        return edited

    def press_button(
        self,
        user_id: int,
        message_id: int,
        data: str,
        *,
        chat_id: int | None = None,
        too_old: bool = False,
    ) -> str:
        """The user presses an inline button of a bot message; returns the callback query id.

        Only callback_data present on the message's current keyboard can be pressed; use
        ``send_update`` to forge anything else. ``too_old``: the message is sent as Telegram
        sends one the bot can no longer act on (an InaccessibleMessage: chat, id, date 0).
        """
        target = user_id if chat_id is None else chat_id
        message = self._chats.find_bot_message(target, message_id)
        if message is None:
            raise LookupError(f"the bot has no message {message_id} in chat {target}")
        if not data or data not in {button_data for _, button_data in message.buttons()}:
            raise ValueError(
                f"message {message_id} has no button with callback_data {data!r}; "
                f"buttons: {message.buttons()}"
            )
        query_id = str(4_000_000_000_000 + next(self._ids))
        self._open_callbacks.add(query_id)
        sender = self._chats.users.get(user_id) or user_record(user_id, "Test", None, "ru")
        self.send_update(
            {
                "callback_query": {
                    "id": query_id,
                    "from": dict(sender),
                    "chat_instance": f"instance{target}",
                    "data": data,
                    "message": (
                        {
                            "chat": dict(self._chats.chat(message.chat_id)),
                            "message_id": message.message_id,
                            "date": 0,
                        }
                        if too_old
                        else self._chats.payload(message)
                    ),
                }
            }
        )
        return query_id

    def block_user(self, user_id: int) -> None:
        self._chats.blocked.add(user_id)

    def unblock_user(self, user_id: int) -> None:
        self._chats.blocked.discard(user_id)

"""The Bot API methods that act in chats: sending, editing and deleting messages, documents and
photos, chat actions, leaving a group and answering button presses."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sandbox.telegram.chats import Chats, inline_markup
from sandbox.telegram.files import FileStore
from sandbox.telegram.records import CallbackAnswer, SentMessage, unix_now
from sandbox.telegram.request import ApiError, ApiRequest

_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
_BAD_CALLBACK = "Bad Request: query is too old and response timeout expired or query ID is invalid"


class MessageMethods:
    def __init__(
        self,
        chats: Chats,
        files: FileStore,
        open_callbacks: set[str],
        answered_callbacks: dict[str, CallbackAnswer],
    ) -> None:
        self._chats = chats
        self._files = files
        self._open_callbacks = open_callbacks  # pressed and not answered yet
        self._answered_callbacks = answered_callbacks
        self.left_chats: list[int] = []  # chats the bot left (leaveChat), in order

    def _new_bot_message(
        self,
        call: ApiRequest,
        *,
        text: str | None = None,
        document: dict[str, Any] | None = None,
        photo: list[dict[str, Any]] | None = None,
        caption: str | None = None,
    ) -> dict[str, Any]:
        chat_id = call.chat_id()
        self._chats.chat(chat_id)
        message = SentMessage(
            message_id=self._chats.next_message_id(chat_id),
            chat_id=chat_id,
            text=text,
            reply_markup=call.get_object("reply_markup"),
            parse_mode=call.get_str("parse_mode"),
            date=unix_now(),
            document=document,
            photo=photo,
            caption=caption,
            params=dict(call.params),
        )
        return self._chats.payload(self._chats.store(message))

    def _editable(self, call: ApiRequest) -> SentMessage:
        if call.params.get("inline_message_id") is not None:
            raise ApiError(400, "Bad Request: inline messages are not supported by the stand-in")
        if call.params.get("chat_id") is None or call.params.get("message_id") is None:
            raise ApiError(400, "Bad Request: message identifier is not specified")
        message = self._chats.find_bot_message(call.chat_id(), call.get_int("message_id"))
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        return message

    async def send_message(self, call: ApiRequest) -> dict[str, Any]:
        text = call.get_str("text")
        if not text or not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        return self._new_bot_message(call, text=text)

    async def send_document(self, call: ApiRequest) -> dict[str, Any]:
        upload = self._files.attached(call, "document")
        return self._new_bot_message(
            call, document=upload.as_document(), caption=call.get_str("caption")
        )

    async def send_photo(self, call: ApiRequest) -> dict[str, Any]:
        upload = self._files.attached(call, "photo")
        return self._new_bot_message(
            call, photo=[upload.as_photo_size()], caption=call.get_str("caption")
        )

    async def edit_message_text(self, call: ApiRequest) -> dict[str, Any]:
        message = self._editable(call)
        if message.text is None:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        text = call.get_str("text")
        if not text or not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        # Like Telegram, an edit without reply_markup removes the inline keyboard.
        markup = call.get_object("reply_markup")
        if text == message.text and markup == inline_markup(message.reply_markup):
            raise ApiError(400, _NOT_MODIFIED)
        edited = replace(
            message,
            text=text,
            reply_markup=markup,
            parse_mode=call.get_str("parse_mode"),
            edits=message.edits + 1,
            edit_date=unix_now(),
        )
        return self._chats.payload(self._chats.store(edited))

    async def edit_message_reply_markup(self, call: ApiRequest) -> dict[str, Any]:
        message = self._editable(call)
        markup = call.get_object("reply_markup")
        if markup == inline_markup(message.reply_markup):
            raise ApiError(400, _NOT_MODIFIED)
        edited = replace(
            message, reply_markup=markup, edits=message.edits + 1, edit_date=unix_now()
        )
        return self._chats.payload(self._chats.store(edited))

    async def delete_message(self, call: ApiRequest) -> bool:
        chat_id, message_id = call.chat_id(), call.get_int("message_id")
        message = self._chats.find_bot_message(chat_id, message_id)
        if message is not None:
            self._chats.store(replace(message, deleted=True))
        elif self._chats.user_messages.pop((chat_id, message_id), None) is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        return True

    async def leave_chat(self, call: ApiRequest) -> bool:
        chat_id = call.chat_id()
        if chat_id > 0:
            raise ApiError(400, "Bad Request: chat member status can't be changed in private chats")
        self.left_chats.append(chat_id)
        return True

    async def answer_callback_query(self, call: ApiRequest) -> bool:
        query_id = call.get_str("callback_query_id") or ""
        if query_id not in self._open_callbacks:  # unknown or answered already
            raise ApiError(400, _BAD_CALLBACK)
        self._open_callbacks.discard(query_id)
        cache_time = call.params.get("cache_time")
        self._answered_callbacks[query_id] = CallbackAnswer(
            callback_query_id=query_id,
            text=call.get_str("text"),
            show_alert=call.get_bool("show_alert"),
            url=call.get_str("url"),
            cache_time=None if cache_time is None else call.get_int("cache_time"),
        )
        return True

    async def send_chat_action(self, call: ApiRequest) -> bool:
        if not call.get_str("action"):
            raise ApiError(400, "Bad Request: action is empty")
        self._chats.chat(call.chat_id())
        return True

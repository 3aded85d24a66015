"""Stand-in for the Telegram Bot API served on loopback.

The bot talks to it through aiogram exactly as to api.telegram.org (``POST /bot{token}/{method}``),
while tests or the terminal sandbox play the users: they enqueue updates, press buttons and
inspect what the bot sent. Everything runs on one event loop; the user-side methods that only
enqueue are synchronous so they can be called from anywhere on that loop.

Enqueued updates wait for getUpdates, or, while a webhook is set, are POSTed to it in order with
the secret-token header and retried until the bot answers 2xx, as Telegram does.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import mimetypes
import struct
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from http import HTTPStatus
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from sandbox.server import Fault, FaultPlan, LoopbackServer

_T = TypeVar("_T")

# Parameters that are plain strings in the Bot API. aiogram sends strings verbatim and
# JSON-encodes everything else, so only these must not be JSON-decoded ("123" stays text).
_STRING_PARAMS = frozenset(
    {
        "action",
        "address",
        "animation",
        "audio",
        "business_connection_id",
        "callback_query_id",
        "caption",
        "custom_title",
        "description",
        "document",
        "emoji",
        "file_id",
        "first_name",
        "inline_message_id",
        "ip_address",
        "language_code",
        "last_name",
        "message_effect_id",
        "name",
        "parse_mode",
        "phone_number",
        "photo",
        "question",
        "secret_token",
        "short_description",
        "sticker",
        "text",
        "thumbnail",
        "title",
        "url",
        "vcard",
        "video",
        "video_note",
        "voice",
    }
)
# Update types Telegram only delivers when allowed_updates names them explicitly.
_OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
_WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_BAD_CALLBACK = "Bad Request: query is too old and response timeout expired or query ID is invalid"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@dataclass(frozen=True)
class SentMessage:
    """A message the bot sent, as it currently stands: an edit replaces the stored copy."""

    message_id: int
    chat_id: int
    text: str | None
    reply_markup: dict[str, Any] | None
    parse_mode: str | None
    date: int
    edits: int = 0
    edit_date: int | None = None
    document: dict[str, Any] | None = None
    photo: list[dict[str, Any]] | None = None
    caption: str | None = None
    deleted: bool = False
    params: dict[str, Any] = field(default_factory=dict)  # everything the sending call carried

    def buttons(self) -> list[tuple[str, str]]:
        """(text, callback_data) of the inline buttons, row by row; "" for url/web-app buttons."""
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        return [
            (str(b.get("text", "")), str(b.get("callback_data", ""))) for row in rows for b in row
        ]


@dataclass(frozen=True)
class ApiCall:
    """One bot->API request: canonical method name, decoded params and the HTTP status answered."""

    method: str
    params: dict[str, Any]
    status: int


@dataclass(frozen=True)
class UploadedFile:
    file_id: str
    file_unique_id: str
    file_name: str
    mime_type: str
    content: bytes

    def as_photo_size(self) -> dict[str, Any]:
        """Telegram keeps several sizes of a photo; the stand-in keeps the one it was sent,
        with its dimensions read from a PNG header (0 for other formats)."""
        width, height = 0, 0
        if self.content.startswith(_PNG_SIGNATURE) and len(self.content) >= 24:
            width, height = struct.unpack(">II", self.content[16:24])
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "width": width,
            "height": height,
            "file_size": len(self.content),
        }

    def as_document(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_name": self.file_name,
            "mime_type": self.mime_type,
            "file_size": len(self.content),
        }


@dataclass(frozen=True)
class CallbackAnswer:
    callback_query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int | None


@dataclass(frozen=True)
class WebhookDelivery:
    """One POST of an update to the bot's webhook: the HTTP status, or why there was none."""

    update_id: int
    status: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class _ApiError(Exception):
    """An error answer in the Bot API envelope; handlers raise it, the dispatcher renders it."""

    def __init__(
        self, error_code: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.parameters = parameters

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body

    def response(self) -> web.Response:
        return web.json_response(self.body(), status=self.error_code)


@dataclass(frozen=True)
class _Request:
    """Decoded parameters of one API call with typed accessors that fail like Telegram does."""

    params: dict[str, Any]
    uploads: dict[str, UploadedFile]

    def get_int(self, name: str, default: int | None = None) -> int:
        value = self.params.get(name)
        if value is None or value == "":
            if default is None:
                raise _ApiError(400, f"Bad Request: {name} is empty")
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise _ApiError(400, f"Bad Request: invalid {name} specified") from None

    def get_str(self, name: str) -> str | None:
        value = self.params.get(name)
        return None if value is None else str(value)

    def get_bool(self, name: str) -> bool:
        return self.params.get(name) in (True, "true")

    def get_object(self, name: str) -> dict[str, Any] | None:
        value = self.params.get(name)
        if value is None or isinstance(value, dict):
            return value
        raise _ApiError(400, f"Bad Request: can't parse {name} JSON object")

    def get_list(self, name: str) -> list[Any] | None:
        value = self.params.get(name)
        if value is None or isinstance(value, list):
            return value
        raise _ApiError(400, f"Bad Request: can't parse {name} JSON array")

    def chat_id(self) -> int:
        value = self.params.get("chat_id")
        if isinstance(value, str) and value.startswith("@"):
            raise _ApiError(400, "Bad Request: chat not found")
        return self.get_int("chat_id")


def _now() -> int:
    return int(time.time())


def _decode(name: str, value: str) -> Any:
    if name in _STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _update_type(update: dict[str, Any]) -> str:
    return next((key for key in update if key != "update_id"), "")


def _inline_markup(markup: dict[str, Any] | None) -> dict[str, Any] | None:
    """Only inline keyboards belong to a message; reply keyboards live on the client."""
    return markup if markup is not None and "inline_keyboard" in markup else None


def _user(
    user_id: int, first_name: str, username: str | None, language: str | None
) -> dict[str, Any]:
    user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
    if username is not None:
        user["username"] = username
    if language is not None:
        user["language_code"] = language
    return user


def _default_description(error_code: int) -> str:
    try:
        return HTTPStatus(error_code).phrase
    except ValueError:
        return "Error"


class TelegramStandIn(LoopbackServer):
    """The Bot API for one bot token, with users driven from Python or over ``/sandbox/``."""

    # A long poll of a bot that stopped no longer counts as a bot waiting for updates.
    cancel_on_disconnect = True

    def __init__(
        self,
        *,
        token: str,
        bot_id: int = 7000000001,
        bot_username: str = "school_support_bot",
        bot_first_name: str = "School Support",
    ) -> None:
        super().__init__()
        self.token = token
        self.bot_user: dict[str, Any] = {
            "id": bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
        }
        self.faults = FaultPlan()
        self.calls: list[ApiCall] = []
        self.answered_callbacks: dict[str, CallbackAnswer] = {}
        self.files: dict[str, UploadedFile] = {}
        self.webhook: dict[str, Any] | None = None
        self.webhook_deliveries: list[WebhookDelivery] = []
        # Telegram backs off for longer between attempts; tests have no time for that.
        self.webhook_retry_delay = 0.05
        self.webhook_timeout = 10.0
        self._delivery: asyncio.Task[None] | None = None
        self._webhook_http: aiohttp.ClientSession | None = None
        self._webhook_error: tuple[int, str] | None = None

        self._pending: list[dict[str, Any]] = []
        self._next_update_id = 1
        # Replaced on every enqueue so a long poll waits on the generation it last inspected.
        self._updates_arrived = asyncio.Event()
        self._allowed_updates: list[str] = []
        self._closing = False
        self._polls_waiting = 0
        # Notified after every API call (bot messages and the call log only change there) and
        # when a long poll starts waiting.
        self._changed = asyncio.Condition()

        self._chats: dict[int, dict[str, Any]] = {}
        self._users: dict[int, dict[str, Any]] = {}
        self._last_message_id: defaultdict[int, int] = defaultdict(int)
        self._history: defaultdict[int, list[SentMessage]] = defaultdict(list)
        self._user_messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._blocked: set[int] = set()
        self._open_callbacks: set[str] = set()
        self._commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._ids = itertools.count(1)

        handlers: dict[str, Callable[[_Request], Awaitable[object]]] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "answerCallbackQuery": self._answer_callback_query,
            "sendChatAction": self._send_chat_action,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendDocument": self._send_document,
            "sendPhoto": self._send_photo,
            "deleteMessage": self._delete_message,
            "close": self._true,
            "logOut": self._true,
        }
        # Bot API method names are case-insensitive; calls are logged under the documented name.
        self._methods = {name.lower(): (name, handler) for name, handler in handlers.items()}

    # ------------------------------------------------------------------ server plumbing

    def build_app(self) -> web.Application:
        self._closing = False
        app = web.Application(client_max_size=50 * 1024 * 1024)  # Bot API upload limit
        app.router.add_post("/sandbox/users/{user_id:-?\\d+}/messages", self._control_message)
        app.router.add_post("/sandbox/users/{user_id:-?\\d+}/callbacks", self._control_callback)
        app.router.add_get("/sandbox/chats/{chat_id:-?\\d+}/messages", self._control_history)
        app.router.add_get("/sandbox/calls", self._control_calls)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        return app

    async def stop(self) -> None:
        # Release pending long polls first, otherwise shutdown waits for their timeouts.
        self._closing = True
        self._wake_pollers()
        if self._delivery is not None:
            self._delivery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._delivery
            self._delivery = None
        if self._webhook_http is not None:
            await self._webhook_http.close()
            self._webhook_http = None
        await super().stop()

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        raw_method = request.match_info["method"]
        method, handler = self._methods.get(raw_method.lower(), (raw_method, None))
        params: dict[str, Any] = {}
        try:
            params, uploads = await self._read_params(request)
            response = await self.faults.apply(method)
            if response is None:
                if request.match_info["token"] != self.token:
                    raise _ApiError(401, "Unauthorized")
                if handler is None:
                    raise _ApiError(404, "Not Found")
                call = _Request(params, uploads)
                if method.startswith(("send", "edit")) and params.get("chat_id") is not None:
                    self._check_not_blocked(call.chat_id())
                result = await handler(call)
                response = web.json_response({"ok": True, "result": result})
        except _ApiError as error:
            response = error.response()
        async with self._changed:
            self.calls.append(ApiCall(method, params, response.status))
            self._changed.notify_all()
        return response

    async def _read_params(
        self, request: web.Request
    ) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
        """Merge query string and body (JSON, urlencoded or multipart) like the real API does."""
        params: dict[str, Any] = {key: _decode(key, value) for key, value in request.query.items()}
        uploads: dict[str, UploadedFile] = {}
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise _ApiError(400, "Bad Request: can't parse JSON object") from None
            if not isinstance(body, dict):
                raise _ApiError(400, "Bad Request: can't parse JSON object")
            params.update(body)
        elif request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
            for key, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    uploads[key] = self._upload(value)
                else:
                    text = value if isinstance(value, str) else value.decode()
                    params[key] = _decode(key, text)
        return params, uploads

    def _upload(self, part: web.FileField) -> UploadedFile:
        mime_type = part.content_type
        if not mime_type or mime_type == "application/octet-stream":
            # aiogram never sets a part type; Telegram infers it from the file name.
            mime_type = mimetypes.guess_type(part.filename)[0] or "application/octet-stream"
        file_id, unique_id = self._new_file_ids("BQAC")
        return UploadedFile(file_id, unique_id, part.filename, mime_type, part.file.read())

    def _check_not_blocked(self, chat_id: int) -> None:
        if chat_id in self._blocked:
            raise _ApiError(403, "Forbidden: bot was blocked by the user")

    # ------------------------------------------------------------------ chats and messages

    def _chat(self, chat_id: int) -> dict[str, Any]:
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

    def _next_message_id(self, chat_id: int) -> int:
        self._last_message_id[chat_id] += 1
        return self._last_message_id[chat_id]

    def _new_file_ids(self, prefix: str) -> tuple[str, str]:
        number = next(self._ids)
        return f"{prefix}-file-{number}", f"{prefix}-uniq-{number}"

    def _find_bot_message(self, chat_id: int, message_id: int) -> SentMessage | None:
        return next(
            (
                message
                for message in self._history.get(chat_id, [])
                if message.message_id == message_id and not message.deleted
            ),
            None,
        )

    def _store(self, message: SentMessage) -> SentMessage:
        """Put a new message or a new version of an existing one into the chat history."""
        history = self._history[message.chat_id]
        for index, old in enumerate(history):
            if old.message_id == message.message_id:
                history[index] = message
                return message
        history.append(message)
        return message

    def _payload(self, message: SentMessage) -> dict[str, Any]:
        """The Bot API Message object for a bot message."""
        payload: dict[str, Any] = {
            "message_id": message.message_id,
            "date": message.date,
            "chat": dict(self._chat(message.chat_id)),
            "from": {key: self.bot_user[key] for key in ("id", "is_bot", "first_name", "username")},
        }
        optional = {
            "text": message.text,
            "caption": message.caption,
            "document": message.document,
            "photo": message.photo,
            "edit_date": message.edit_date,
            "reply_markup": _inline_markup(message.reply_markup),
        }
        payload.update({key: value for key, value in optional.items() if value is not None})
        return payload

    def _new_bot_message(
        self,
        call: _Request,
        *,
        text: str | None = None,
        document: dict[str, Any] | None = None,
        photo: list[dict[str, Any]] | None = None,
        caption: str | None = None,
    ) -> dict[str, Any]:
        chat_id = call.chat_id()
        self._chat(chat_id)
        message = SentMessage(
            message_id=self._next_message_id(chat_id),
            chat_id=chat_id,
            text=text,
            reply_markup=call.get_object("reply_markup"),
            parse_mode=call.get_str("parse_mode"),
            date=_now(),
            document=document,
            photo=photo,
            caption=caption,
            params=dict(call.params),
        )
        return self._payload(self._store(message))

    def _editable(self, call: _Request) -> SentMessage:
        if call.params.get("inline_message_id") is not None:
            raise _ApiError(400, "Bad Request: inline messages are not supported by the stand-in")
        if call.params.get("chat_id") is None or call.params.get("message_id") is None:
            raise _ApiError(400, "Bad Request: message identifier is not specified")
        message = self._find_bot_message(call.chat_id(), call.get_int("message_id"))
        if message is None:
            raise _ApiError(400, "Bad Request: message to edit not found")
        return message

    # ------------------------------------------------------------------ Bot API methods

    async def _true(self, call: _Request) -> bool:
        return True

    async def _get_me(self, call: _Request) -> dict[str, Any]:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    @property
    def updates_waiting(self) -> bool:
        """Updates the bot has not taken (acknowledged with a later offset) yet."""
        return bool(self._pending)

    async def _get_updates(self, call: _Request) -> list[dict[str, Any]]:
        if self.webhook is not None:
            raise _ApiError(409, _WEBHOOK_CONFLICT)
        offset = call.get_int("offset", 0)
        limit = min(max(call.get_int("limit", 100), 1), 100)
        timeout = max(call.get_int("timeout", 0), 0)
        allowed = call.get_list("allowed_updates")
        if allowed is not None:  # a setting that sticks for later calls, as in Telegram
            self._allowed_updates = [str(kind) for kind in allowed]
        if offset > 0:
            self._pending = [u for u in self._pending if u["update_id"] >= offset]
        elif offset < 0:
            self._pending = self._pending[offset:]

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            arrived = self._updates_arrived
            self._pending = [u for u in self._pending if self._is_allowed(u)]
            remaining = deadline - loop.time()
            if self._pending or remaining <= 0 or self._closing:
                return self._pending[:limit]
            self._polls_waiting += 1
            try:
                async with self._changed:
                    self._changed.notify_all()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(arrived.wait(), remaining)
            finally:
                self._polls_waiting -= 1

    def _is_allowed(self, update: dict[str, Any]) -> bool:
        kind = _update_type(update)
        if self._allowed_updates:
            return kind in self._allowed_updates
        return kind not in _OPT_IN_UPDATES

    async def _send_message(self, call: _Request) -> dict[str, Any]:
        text = call.get_str("text")
        if not text or not text.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        return self._new_bot_message(call, text=text)

    def _attached(self, call: _Request, field: str) -> UploadedFile:
        """The file of a send* call: uploaded in the field, attached by name, or a file_id."""
        reference = call.get_str(field)
        if reference is None:
            upload = call.uploads.get(field)  # the file sent directly in the field
        elif reference.startswith("attach://"):
            upload = call.uploads.get(reference.removeprefix("attach://"))
        else:
            upload = self.files.get(reference)  # resending by file_id
        if upload is None:
            raise _ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        self.files[upload.file_id] = upload
        return upload

    async def _send_document(self, call: _Request) -> dict[str, Any]:
        upload = self._attached(call, "document")
        return self._new_bot_message(
            call, document=upload.as_document(), caption=call.get_str("caption")
        )

    async def _send_photo(self, call: _Request) -> dict[str, Any]:
        upload = self._attached(call, "photo")
        return self._new_bot_message(
            call, photo=[upload.as_photo_size()], caption=call.get_str("caption")
        )

    async def _edit_message_text(self, call: _Request) -> dict[str, Any]:
        message = self._editable(call)
        if message.text is None:
            raise _ApiError(400, "Bad Request: there is no text in the message to edit")
        text = call.get_str("text")
        if not text or not text.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        # Like Telegram, an edit without reply_markup removes the inline keyboard.
        markup = call.get_object("reply_markup")
        if text == message.text and markup == _inline_markup(message.reply_markup):
            raise _ApiError(400, _NOT_MODIFIED)
        edited = replace(
            message,
            text=text,
            reply_markup=markup,
            parse_mode=call.get_str("parse_mode"),
            edits=message.edits + 1,
            edit_date=_now(),
        )
        return self._payload(self._store(edited))

    async def _edit_message_reply_markup(self, call: _Request) -> dict[str, Any]:
        message = self._editable(call)
        markup = call.get_object("reply_markup")
        if markup == _inline_markup(message.reply_markup):
            raise _ApiError(400, _NOT_MODIFIED)
        edited = replace(message, reply_markup=markup, edits=message.edits + 1, edit_date=_now())
        return self._payload(self._store(edited))

    async def _delete_message(self, call: _Request) -> bool:
        chat_id, message_id = call.chat_id(), call.get_int("message_id")
        message = self._find_bot_message(chat_id, message_id)
        if message is not None:
            self._store(replace(message, deleted=True))
        elif self._user_messages.pop((chat_id, message_id), None) is None:
            raise _ApiError(400, "Bad Request: message to delete not found")
        return True

    async def _answer_callback_query(self, call: _Request) -> bool:
        query_id = call.get_str("callback_query_id") or ""
        if query_id not in self._open_callbacks:  # unknown or answered already
            raise _ApiError(400, _BAD_CALLBACK)
        self._open_callbacks.discard(query_id)
        cache_time = call.params.get("cache_time")
        self.answered_callbacks[query_id] = CallbackAnswer(
            callback_query_id=query_id,
            text=call.get_str("text"),
            show_alert=call.get_bool("show_alert"),
            url=call.get_str("url"),
            cache_time=None if cache_time is None else call.get_int("cache_time"),
        )
        return True

    async def _send_chat_action(self, call: _Request) -> bool:
        if not call.get_str("action"):
            raise _ApiError(400, "Bad Request: action is empty")
        self._chat(call.chat_id())
        return True

    @staticmethod
    def _commands_key(scope: dict[str, Any] | None, language_code: str | None) -> tuple[str, str]:
        return json.dumps(scope or {"type": "default"}, sort_keys=True), language_code or ""

    def _call_commands_key(self, call: _Request) -> tuple[str, str]:
        return self._commands_key(call.get_object("scope"), call.get_str("language_code"))

    async def _set_my_commands(self, call: _Request) -> bool:
        commands = call.get_list("commands")
        if commands is None or not all(
            isinstance(c, dict) and "command" in c and "description" in c for c in commands
        ):
            raise _ApiError(400, "Bad Request: can't parse commands JSON array")
        self._commands[self._call_commands_key(call)] = commands
        return True

    async def _get_my_commands(self, call: _Request) -> list[dict[str, Any]]:
        return self._commands.get(self._call_commands_key(call), [])

    async def _delete_my_commands(self, call: _Request) -> bool:
        self._commands.pop(self._call_commands_key(call), None)
        return True

    async def _set_webhook(self, call: _Request) -> bool:
        url = call.get_str("url")
        if url is None:
            raise _ApiError(400, "Bad Request: url is empty")
        if call.get_bool("drop_pending_updates"):
            self._pending.clear()
        allowed = call.get_list("allowed_updates")
        if allowed is not None:
            self._allowed_updates = [str(kind) for kind in allowed]
        # Setting an empty url is how the Bot API removes a webhook.
        self.webhook = None
        if url:
            self.webhook = {
                "url": url,
                "secret_token": call.get_str("secret_token"),
                "allowed_updates": allowed,
                "drop_pending_updates": call.get_bool("drop_pending_updates"),
            }
        self._wake_pollers()  # the delivery loop picks up the new address or stops
        self._ensure_delivery()
        return True

    async def _delete_webhook(self, call: _Request) -> bool:
        self.webhook = None
        if call.get_bool("drop_pending_updates"):
            self._pending.clear()
        self._wake_pollers()
        return True

    async def _get_webhook_info(self, call: _Request) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self.webhook["url"] if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        if self.webhook and self.webhook["allowed_updates"] is not None:
            info["allowed_updates"] = self.webhook["allowed_updates"]
        if self._webhook_error is not None:
            info["last_error_date"], info["last_error_message"] = self._webhook_error
        return info

    # ------------------------------------------------------------------ webhook delivery

    def _ensure_delivery(self) -> None:
        if self.webhook is not None and (self._delivery is None or self._delivery.done()):
            self._delivery = asyncio.get_running_loop().create_task(self._deliver_webhook())

    async def _deliver_webhook(self) -> None:
        """While a webhook is set, POST the pending updates to it one at a time, in order.

        Like Telegram, an update leaves the queue only when the bot answers 2xx; otherwise it
        is sent again after a pause, and the ones behind it wait."""
        while self.webhook is not None and not self._closing:
            arrived = self._updates_arrived
            self._pending = [u for u in self._pending if self._is_allowed(u)]
            if not self._pending:
                await arrived.wait()
                continue
            update = self._pending[0]
            delivery = await self._post_update(update, self.webhook["secret_token"])
            self.webhook_deliveries.append(delivery)
            if delivery.ok:
                # By identity: a drop_pending_updates meanwhile may have emptied the queue.
                self._pending = [u for u in self._pending if u is not update]
            else:
                self._webhook_error = (_now(), delivery.error or "")
                await asyncio.sleep(self.webhook_retry_delay)
            async with self._changed:
                self._changed.notify_all()

    async def _post_update(self, update: dict[str, Any], secret: str | None) -> WebhookDelivery:
        assert self.webhook is not None
        if self._webhook_http is None:
            timeout = aiohttp.ClientTimeout(total=self.webhook_timeout)
            self._webhook_http = aiohttp.ClientSession(timeout=timeout)
        headers = {} if secret is None else {SECRET_HEADER: secret}
        update_id = int(update["update_id"])
        try:
            async with self._webhook_http.post(
                self.webhook["url"], json=update, headers=headers
            ) as response:
                await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            return WebhookDelivery(update_id, None, f"Connection failed: {type(error).__name__}")
        if 200 <= response.status < 300:
            return WebhookDelivery(update_id, response.status)
        message = f"Wrong response from the webhook: {response.status} {response.reason}"
        return WebhookDelivery(update_id, response.status, message)

    async def post_to_webhook(self, update: dict[str, Any], *, secret: str | None) -> int:
        """POST ``update`` to the webhook now, outside the queue, with ``secret`` in the
        secret-token header (``None``: no header); returns the HTTP status (0: no answer).
        How a test knocks with a wrong secret."""
        if self.webhook is None:
            raise LookupError("no webhook is set")
        update = {"update_id": self._next_update_id, **update}
        self._next_update_id = max(self._next_update_id, int(update["update_id"]) + 1)
        delivery = await self._post_update(update, secret)
        return delivery.status or 0

    # ------------------------------------------------------------------ user side

    def send_update(self, update: dict[str, Any]) -> int:
        """Enqueue a raw update for getUpdates, or for the webhook while one is set; assigns
        ``update_id`` when missing."""
        update = dict(update)
        update.setdefault("update_id", self._next_update_id)
        self._next_update_id = max(self._next_update_id, int(update["update_id"]) + 1)
        self._pending.append(update)
        self._wake_pollers()
        self._ensure_delivery()
        return int(update["update_id"])

    def _wake_pollers(self) -> None:
        arrived, self._updates_arrived = self._updates_arrived, asyncio.Event()
        arrived.set()

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
        user = _user(user_id, first_name, username, language_code)
        self._users[user_id] = user
        target = user_id if chat_id is None else chat_id
        if chat_type == "private":
            chat: dict[str, Any] = {"id": target, "type": "private", "first_name": first_name}
            if username is not None:
                chat["username"] = username
        else:
            chat = self._chats.get(target) or {
                "id": target,
                "type": chat_type,
                "title": f"Test {chat_type}",
            }
        self._chats[target] = chat
        message: dict[str, Any] = {
            "message_id": self._next_message_id(target),
            "date": _now(),
            "chat": dict(chat),
            "from": dict(user),
        }
        if text is not None:
            message["text"] = text
        message.update(message_fields)
        self._user_messages[(target, message["message_id"])] = message
        self.send_update({"message": message})
        return message

    def send_photo(
        self, user_id: int, *, caption: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        file_id, unique_id = self._new_file_ids("AgAC")
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
        file_id, unique_id = self._new_file_ids("CAAC")
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
        file_id, unique_id = self._new_file_ids("AwAC")
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
        original = self._user_messages.get(key)
        if original is None or original["from"]["id"] != user_id:
            raise LookupError(f"user {user_id} has no message {message_id} in chat {key[0]}")
        edited = {**original, "text": text, "edit_date": _now()}
        self._user_messages[key] = edited
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
        message = self._find_bot_message(target, message_id)
        if message is None:
            raise LookupError(f"the bot has no message {message_id} in chat {target}")
        if not data or data not in {button_data for _, button_data in message.buttons()}:
            raise ValueError(
                f"message {message_id} has no button with callback_data {data!r}; "
                f"buttons: {message.buttons()}"
            )
        query_id = str(4_000_000_000_000 + next(self._ids))
        self._open_callbacks.add(query_id)
        sender = self._users.get(user_id) or _user(user_id, "Test", None, "ru")
        self.send_update(
            {
                "callback_query": {
                    "id": query_id,
                    "from": dict(sender),
                    "chat_instance": f"instance{target}",
                    "data": data,
                    "message": (
                        {
                            "chat": dict(self._chat(message.chat_id)),
                            "message_id": message.message_id,
                            "date": 0,
                        }
                        if too_old
                        else self._payload(message)
                    ),
                }
            }
        )
        return query_id

    def block_user(self, user_id: int) -> None:
        self._blocked.add(user_id)

    def unblock_user(self, user_id: int) -> None:
        self._blocked.discard(user_id)

    def fail_next(
        self,
        method: str,
        *,
        error_code: int = 429,
        description: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with a Bot API error."""
        if error_code == 429 and retry_after is None:
            retry_after = 1
        if description is None:
            description = (
                f"Too Many Requests: retry after {retry_after}"
                if error_code == 429
                else _default_description(error_code)
            )
        parameters = None if retry_after is None else {"retry_after": retry_after}
        body = _ApiError(error_code, description, parameters).body()
        canonical = self._methods.get(method.lower(), (method, None))[0]
        self.faults.add(canonical, Fault(status=error_code, json_body=body), times)

    # ------------------------------------------------------------------ inspection

    def bot_messages(self, chat_id: int) -> list[SentMessage]:
        """Messages the bot sent to the chat, in order, as they are now (deleted ones flagged)."""
        return list(self._history.get(chat_id, []))

    def calls_of(self, method: str) -> list[ApiCall]:
        return [call for call in self.calls if call.method.lower() == method.lower()]

    def commands(
        self, scope: dict[str, Any] | None = None, language_code: str = ""
    ) -> list[dict[str, Any]]:
        """Commands set for that scope and language (default scope, no language by default)."""
        return list(self._commands.get(self._commands_key(scope, language_code), []))

    async def wait_for_message(
        self,
        chat_id: int,
        predicate: Callable[[SentMessage], bool] | None = None,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 - the waiting itself is what is timed
        after: int = 0,
    ) -> SentMessage:
        """The first of ``bot_messages(chat_id)[after:]`` matching ``predicate``, now or later.

        Messages are checked in their current state, so an edit can make one match.
        """

        def find() -> SentMessage | None:
            candidates = self._history.get(chat_id, [])[after:]
            return next((m for m in candidates if predicate is None or predicate(m)), None)

        found = await self._wait(find, timeout)
        if found is None:
            listing = "\n".join(
                f"  #{m.message_id} edits={m.edits}{' deleted' if m.deleted else ''}: "
                f"{m.text if m.text is not None else m.caption!r} {m.buttons() or ''}"
                for m in self._history.get(chat_id, [])
            )
            raise AssertionError(
                f"no matching bot message in chat {chat_id} (after #{after}) within {timeout}s; "
                f"the chat has:\n{listing or '  nothing'}"
            )
        return found

    async def wait_for_call(
        self,
        method: str,
        predicate: Callable[[ApiCall], bool] | None = None,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 - the waiting itself is what is timed
        after: int = 0,
    ) -> ApiCall:
        """The first of ``calls[after:]`` of ``method`` matching ``predicate``, now or later."""

        def find() -> ApiCall | None:
            return next(
                (
                    call
                    for call in self.calls[after:]
                    if call.method.lower() == method.lower()
                    and (predicate is None or predicate(call))
                ),
                None,
            )

        found = await self._wait(find, timeout)
        if found is None:
            seen = [call.method for call in self.calls[after:]]
            raise AssertionError(f"no matching {method} call within {timeout}s; calls: {seen}")
        return found

    @property
    def polls_waiting(self) -> int:
        """How many getUpdates long polls are waiting for updates right now."""
        return self._polls_waiting

    async def wait_for_poll(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 - as above
        """Until the bot has a getUpdates long poll waiting (it is up and listening)."""
        if await self._wait(lambda: self._polls_waiting or None, timeout) is None:
            raise AssertionError(f"the bot did not long-poll getUpdates within {timeout}s")

    async def _wait(self, find: Callable[[], _T | None], within: float) -> _T | None:
        found: _T | None = None

        def check() -> bool:
            nonlocal found
            found = find()
            return found is not None

        try:
            async with asyncio.timeout(within), self._changed:
                await self._changed.wait_for(check)
        except TimeoutError:
            return None
        return found

    # ------------------------------------------------------------------ HTTP control API

    async def _control_message(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        user_id = int(request.match_info["user_id"])
        return _control_answer(lambda: self.send_message(user_id, **body))

    async def _control_callback(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        user_id = int(request.match_info["user_id"])
        chat_id = body.get("chat_id")

        def press() -> dict[str, Any]:
            query_id = self.press_button(
                user_id,
                int(body["message_id"]),
                str(body["data"]),
                chat_id=None if chat_id is None else int(chat_id),
            )
            return {"callback_query_id": query_id}

        return _control_answer(press)

    async def _control_history(self, request: web.Request) -> web.Response:
        messages = self.bot_messages(int(request.match_info["chat_id"]))
        return web.json_response([asdict(message) for message in messages])

    async def _control_calls(self, request: web.Request) -> web.Response:
        return web.json_response([asdict(call) for call in self.calls])


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="body must be a JSON object") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return body


def _control_answer(action: Callable[[], object]) -> web.Response:
    """Run a user-side action, turning bad input into a 400 with the reason."""
    try:
        return web.json_response(action())
    except (LookupError, TypeError, ValueError) as error:
        return web.json_response({"error": f"{type(error).__name__}: {error}"}, status=400)

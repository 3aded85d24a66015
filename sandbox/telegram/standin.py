"""The stand-in server itself: the Bot API endpoint ``POST /bot{token}/{method}`` that checks
the token, plays scripted faults, dispatches to the methods and logs every call, put together
with the user side, the inspection side and the ``/sandbox/`` control routes."""

from __future__ import annotations

import itertools
from typing import Any

from aiohttp import web

from sandbox.server import Fault, FaultPlan, LoopbackServer
from sandbox.telegram.bot_methods import BotMethods
from sandbox.telegram.changes import Changes
from sandbox.telegram.chats import Chats
from sandbox.telegram.control import ControlRoutes
from sandbox.telegram.files import FileStore
from sandbox.telegram.inspection import Inspection
from sandbox.telegram.message_methods import MessageMethods
from sandbox.telegram.records import ApiCall, CallbackAnswer, UploadedFile, WebhookDelivery
from sandbox.telegram.request import ApiError, ApiMethod, read_request
from sandbox.telegram.updates import UpdateQueue
from sandbox.telegram.users import UserActions
from sandbox.telegram.webhook import WebhookPusher


class TelegramStandIn(UserActions, Inspection, LoopbackServer):
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
        self._open_callbacks: set[str] = set()
        self._ids = itertools.count(1)  # file ids and callback query ids
        self._changes = Changes()
        self._chats = Chats(self.bot_user)
        self._files = FileStore(self._ids)
        self._updates = UpdateQueue(self._changes)
        self._webhook = WebhookPusher(self._updates, self._changes)
        self._bot_methods = bot = BotMethods(self.bot_user, self._updates, self._webhook)
        chat = MessageMethods(
            self._chats, self._files, self._open_callbacks, self.answered_callbacks
        )
        self.left_chats = chat.left_chats
        methods: dict[str, ApiMethod] = {
            "getMe": bot.get_me,
            "getUpdates": bot.get_updates,
            "sendMessage": chat.send_message,
            "editMessageText": chat.edit_message_text,
            "editMessageReplyMarkup": chat.edit_message_reply_markup,
            "answerCallbackQuery": chat.answer_callback_query,
            "sendChatAction": chat.send_chat_action,
            "setMyCommands": bot.set_my_commands,
            "getMyCommands": bot.get_my_commands,
            "deleteMyCommands": bot.delete_my_commands,
            "setWebhook": bot.set_webhook,
            "deleteWebhook": bot.delete_webhook,
            "getWebhookInfo": bot.get_webhook_info,
            "sendDocument": chat.send_document,
            "sendPhoto": chat.send_photo,
            "deleteMessage": chat.delete_message,
            "leaveChat": chat.leave_chat,
            "close": bot.close,
            "logOut": bot.close,
        }
        # Bot API method names are case-insensitive; calls are logged under the documented name.
        self._methods: dict[str, tuple[str, ApiMethod]] = {
            name.lower(): (name, method) for name, method in methods.items()
        }

    @property
    def files(self) -> dict[str, UploadedFile]:
        """The files the bot sent, by file_id."""
        return self._files.files

    @property
    def webhook(self) -> dict[str, Any] | None:
        """The webhook as setWebhook left it (url, secret_token, allowed_updates...), or None."""
        return self._webhook.webhook

    @property
    def webhook_deliveries(self) -> list[WebhookDelivery]:
        return self._webhook.deliveries

    def build_app(self) -> web.Application:
        self._updates.closing = False
        app = web.Application(client_max_size=50 * 1024 * 1024)  # Bot API upload limit
        ControlRoutes(self).add_to(app)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        return app

    async def stop(self) -> None:
        # Release pending long polls first, otherwise shutdown waits for their timeouts.
        self._updates.close()
        await self._webhook.close()
        await super().stop()

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method, handler = self._canonical(request.match_info["method"])
        params: dict[str, Any] = {}
        try:
            call = await read_request(request, self._files.to_upload)
            params = call.params
            response = await self.faults.apply(method)
            if response is None:
                if request.match_info["token"] != self.token:
                    raise ApiError(401, "Unauthorized")
                if handler is None:
                    raise ApiError(404, "Not Found")
                if method.startswith(("send", "edit")) and params.get("chat_id") is not None:
                    self._check_not_blocked(call.chat_id())
                result = await handler(call)
                response = web.json_response({"ok": True, "result": result})
        except ApiError as error:
            response = error.response()
        self.calls.append(ApiCall(method, params, response.status))
        await self._changes.notify()
        return response

    def _canonical(self, method: str) -> tuple[str, ApiMethod | None]:
        """The documented name of a method (as given when unknown) and its implementation."""
        return self._methods.get(method.lower(), (method, None))

    def _check_not_blocked(self, chat_id: int) -> None:
        if chat_id in self._chats.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")

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
        body = ApiError.scripted(error_code, description, retry_after).body()
        self.faults.add(self._canonical(method)[0], Fault(status=error_code, json_body=body), times)

    async def post_to_webhook(self, update: dict[str, Any], *, secret: str | None) -> int:
        """POST ``update`` to the webhook now, outside the queue, with ``secret`` in the
        secret-token header (``None``: no header); returns the HTTP status (0: no answer).
        How a test knocks with a wrong secret."""
        if self._webhook.webhook is None:
            raise LookupError("no webhook is set")
        delivery = await self._webhook.post(self._updates.numbered(update), secret)
        return delivery.status or 0

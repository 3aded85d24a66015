"""The Bot API methods about the bot itself: who it is, how it receives updates (getUpdates or
a webhook) and its command menus."""

from __future__ import annotations

import json
from typing import Any

from sandbox.telegram.request import ApiError, ApiRequest
from sandbox.telegram.updates import UpdateQueue
from sandbox.telegram.webhook import WebhookPusher

_WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)


class BotMethods:
    def __init__(
        self, bot_user: dict[str, Any], updates: UpdateQueue, webhook: WebhookPusher
    ) -> None:
        self._bot_user = bot_user
        self._updates = updates
        self._webhook = webhook
        self._commands: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def commands(
        self, scope: dict[str, Any] | None, language_code: str | None
    ) -> list[dict[str, Any]]:
        """Commands set for that scope (None: the default one) and language."""
        return self._commands.get(self._commands_key(scope, language_code), [])

    async def close(self, call: ApiRequest) -> bool:
        """close and logOut: the stand-in keeps no session to end; Telegram answers true."""
        return True

    async def get_me(self, call: ApiRequest) -> dict[str, Any]:
        return {
            **self._bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def get_updates(self, call: ApiRequest) -> list[dict[str, Any]]:
        if self._webhook.webhook is not None:
            raise ApiError(409, _WEBHOOK_CONFLICT)
        offset = call.get_int("offset", 0)
        limit = min(max(call.get_int("limit", 100), 1), 100)
        timeout = max(call.get_int("timeout", 0), 0)
        self._updates.allow(call.get_list("allowed_updates"))
        self._updates.acknowledge(offset)
        return await self._updates.long_poll(limit, timeout)

    @staticmethod
    def _commands_key(scope: dict[str, Any] | None, language_code: str | None) -> tuple[str, str]:
        return json.dumps(scope or {"type": "default"}, sort_keys=True), language_code or ""

    def _call_commands_key(self, call: ApiRequest) -> tuple[str, str]:
        return self._commands_key(call.get_object("scope"), call.get_str("language_code"))

    async def set_my_commands(self, call: ApiRequest) -> bool:
        commands = call.get_list("commands")
        if commands is None or not all(
            isinstance(c, dict) and "command" in c and "description" in c for c in commands
        ):
            raise ApiError(400, "Bad Request: can't parse commands JSON array")
        self._commands[self._call_commands_key(call)] = commands
        return True

    async def get_my_commands(self, call: ApiRequest) -> list[dict[str, Any]]:
        return self._commands.get(self._call_commands_key(call), [])

    async def delete_my_commands(self, call: ApiRequest) -> bool:
        self._commands.pop(self._call_commands_key(call), None)
        return True

    async def set_webhook(self, call: ApiRequest) -> bool:
        url = call.get_str("url")
        if url is None:
            raise ApiError(400, "Bad Request: url is empty")
        if call.get_bool("drop_pending_updates"):
            self._updates.clear()
        allowed = call.get_list("allowed_updates")
        self._updates.allow(allowed)
        # Setting an empty url is how the Bot API removes a webhook.
        self._webhook.webhook = None
        if url:
            self._webhook.webhook = {
                "url": url,
                "secret_token": call.get_str("secret_token"),
                "allowed_updates": allowed,
                "drop_pending_updates": call.get_bool("drop_pending_updates"),
            }
        self._updates.wake()  # the delivery loop picks up the new address or stops
        self._webhook.ensure_running()
        return True

    async def delete_webhook(self, call: ApiRequest) -> bool:
        self._webhook.webhook = None
        if call.get_bool("drop_pending_updates"):
            self._updates.clear()
        self._updates.wake()
        return True

    async def get_webhook_info(self, call: ApiRequest) -> dict[str, Any]:
        webhook = self._webhook.webhook
        info: dict[str, Any] = {
            "url": webhook["url"] if webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates.pending),
        }
        if webhook and webhook["allowed_updates"] is not None:
            info["allowed_updates"] = webhook["allowed_updates"]
        if self._webhook.last_error is not None:
            info["last_error_date"], info["last_error_message"] = self._webhook.last_error
        return info

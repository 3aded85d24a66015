"""The stand-in's own HTTP API under ``/sandbox/``: play a user (write, press a button) and read
what the bot sent and called, from outside the Python process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from sandbox.telegram.standin import TelegramStandIn


class ControlRoutes:
    def __init__(self, stand_in: TelegramStandIn) -> None:
        self._stand_in = stand_in

    def add_to(self, app: web.Application) -> None:
        app.router.add_post("/sandbox/users/{user_id:-?\\d+}/messages", self._message)
        app.router.add_post("/sandbox/users/{user_id:-?\\d+}/callbacks", self._callback)
        app.router.add_get("/sandbox/chats/{chat_id:-?\\d+}/messages", self._history)
        app.router.add_get("/sandbox/calls", self._calls)

    async def _message(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        user_id = int(request.match_info["user_id"])
        return _answer(lambda: self._stand_in.send_message(user_id, **body))

    async def _callback(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        user_id = int(request.match_info["user_id"])
        chat_id = body.get("chat_id")

        def press() -> dict[str, Any]:
            query_id = self._stand_in.press_button(
                user_id,
                int(body["message_id"]),
                str(body["data"]),
                chat_id=None if chat_id is None else int(chat_id),
            )
            return {"callback_query_id": query_id}

        return _answer(press)

    async def _history(self, request: web.Request) -> web.Response:
        messages = self._stand_in.bot_messages(int(request.match_info["chat_id"]))
        return web.json_response([asdict(message) for message in messages])

    async def _calls(self, request: web.Request) -> web.Response:
        return web.json_response([asdict(call) for call in self._stand_in.calls])


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="body must be a JSON object") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return body


def _answer(action: Callable[[], object]) -> web.Response:
    """Run a user-side action, turning bad input into a 400 with the reason."""
    try:
        return web.json_response(action())
    except (LookupError, TypeError, ValueError) as error:
        return web.json_response({"error": f"{type(error).__name__}: {error}"}, status=400)

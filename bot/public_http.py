"""The public HTTP server on ``HTTP_LISTEN``: the Telegram webhook (webhook mode) and
``/getcourse/events`` (while ``GETCOURSE_EVENTS_SECRET`` is set), in either run mode. Health and
metrics are never here: they live on ``HEALTH_LISTEN`` (``bot.health``), which a reverse proxy
does not forward.

``/getcourse/events`` takes GET or POST, with parameters in the query, a form
(urlencoded or multipart) or a JSON object; the body is read up to 64 KB and refused above."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from email import policy
from email.parser import BytesParser
from urllib.parse import parse_qsl

from aiohttp import web

from bot.app import App
from bot.listening import Listener
from services.linking.bridge import EventForbidden, EventMalformed, EventsThrottled

log = logging.getLogger(__name__)

EVENTS_PATH = "/getcourse/events"
MAX_EVENT_BODY = 64 * 1024


class BadBody(Exception):
    """The body cannot be read as parameters; the message is the one-line reason."""


def add_events_route(web_app: web.Application, app: App) -> None:
    events = app.services.events

    async def getcourse_events(request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_EVENT_BODY:
            events.refused("body too large")
            return web.Response(status=413, text="body over 64 KB\n")
        body = await _read_at_most(request, MAX_EVENT_BODY + 1)
        if len(body) > MAX_EVENT_BODY:
            events.refused("body too large")
            return web.Response(status=413, text="body over 64 KB\n")
        try:
            params = _merge([request.query.items(), _body_params(request, body)])
        except BadBody as error:
            events.refused(str(error))
            return web.Response(status=400, text=f"{error}\n")
        try:
            received = await events.receive(params)
        except EventsThrottled as error:
            headers = {"Retry-After": str(int(error.retry_after) + 1)}
            return web.Response(status=429, text="too many requests\n", headers=headers)
        except EventForbidden:
            return web.Response(status=403, text="forbidden\n")
        except EventMalformed as error:
            return web.Response(status=400, text=f"{error}\n")
        return web.json_response({"ok": True, "event": received.event, "status": received.outcome})

    web_app.router.add_route("GET", EVENTS_PATH, getcourse_events)
    web_app.router.add_route("POST", EVENTS_PATH, getcourse_events)


async def _read_at_most(request: web.Request, limit: int) -> bytes:
    """The body, but no more than ``limit`` bytes of it (a chunked body has no length)."""
    body = bytearray()
    while len(body) < limit:
        chunk = await request.content.read(limit - len(body))
        if not chunk:
            break
        body += chunk
    return bytes(body)


def _body_params(request: web.Request, body: bytes) -> list[tuple[str, str]]:
    if not body.strip():
        return []
    content_type = request.content_type
    if content_type in ("application/x-www-form-urlencoded", "application/octet-stream", ""):
        try:
            return parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            raise BadBody("the body is not a form (name=value&...) in UTF-8") from None
    if content_type == "application/json":
        try:
            data = json.loads(body)
        except ValueError:
            raise BadBody("the body is not JSON") from None
        if not isinstance(data, dict) or not all(
            isinstance(value, str | int | float) and not isinstance(value, bool)
            for value in data.values()
        ):
            raise BadBody("the JSON body must be an object of texts and numbers")
        return [(str(name), str(value)) for name, value in data.items()]
    if content_type == "multipart/form-data":
        return _multipart(request.headers.get("Content-Type", ""), body)
    raise BadBody("send the parameters in the query, a form or a JSON object")


def _merge(sources: Iterable[Iterable[tuple[str, str]]]) -> dict[str, str]:
    params: dict[str, str] = {}
    for source in sources:
        for name, value in source:
            if name in params and params[name] != value:
                raise BadBody(f"parameter {name} is given twice with different values")
            params[name] = value
    return params


def _multipart(content_type_header: str, body: bytes) -> list[tuple[str, str]]:
    """A multipart form of text fields (what PHP's curl sends for an array of fields); the
    boundary is in the request's Content-Type, which the parser reads as a header."""
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type_header.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise BadBody("the multipart body cannot be read")
    params = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or part.get_filename() is not None:
            raise BadBody("the multipart body must hold named text fields only")
        try:
            content = part.get_content()
            value = content if isinstance(content, str) else bytes(content).decode("utf-8")
        except (LookupError, UnicodeDecodeError):
            raise BadBody("the multipart body must be UTF-8 text") from None
        params.append((name, value))
    return params


class PublicServer(Listener):
    """``HTTP_LISTEN`` with the events route (and, from ``bot.webhook``, the webhook)."""

    def __init__(self, app: App, web_app: web.Application | None = None) -> None:
        web_app = web_app or web.Application()
        if app.services.events.enabled:
            add_events_route(web_app, app)
        super().__init__(web_app, app.settings.http_listen, "HTTP_LISTEN", "public endpoints")

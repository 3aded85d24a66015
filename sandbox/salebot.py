"""A Salebot stand-in served over real HTTP on loopback.

It follows ``docs/salebot-api.md``: the API key is a path segment
(``/api/{api_key}/{action}``), answers are JSON whose shape differs per action (a bare array
from ``find_client_id_by_platform_id``, a flat dict from ``get_variables``), errors are often
HTTP 200 with a non-success ``status``, and JSON bodies are accepted whatever the
Content-Type says (form bodies too). Where those notes leave something open, the choice
made here is noted next to the code.

Implemented actions: ``find_client_id_by_platform_id``, ``save_variables``, ``get_variables``,
``callback``, ``connected_channels`` and ``load_clients``. Every action accepts GET and POST;
parameters come from the query string merged with the body (the body wins). Tests check the
method the bot used through :attr:`SalebotStandIn.requests`.

Where the reference leaves an answer open, the stand-in can give each shape seen, switched by an
attribute: ``no_client_answer`` (no match for ``find_client_id_by_platform_id``: ``[]``, HTTP 404
or HTTP 200 ``{"status": "fail", ...}``) and ``saved_answer`` (a successful ``save_variables``:
``{"status": "success"}``, an empty body, or the text ``OK``).

Seed file (``sandbox/data/salebot_clients.json``)::

    {
      "telegram_bots": ["school_funnel_bot"],         // optional: usernames of Telegram channels
      "clients": [
        {
          "id": 836058541,                            // Salebot client_id
          "platform_id": "100000001",                 // Telegram user id (string) / VK id ...
          "group": "school_funnel_bot",               // bot username for Telegram, group id for VK
          "client_type": 1,                           // 1 = Telegram bot, 0 = VK, ...
          "name": "Иван Петров",
          "created_at": 1718000000,                   // unix seconds
          "tag": null,                                // optional
          "avatar": null,                             // optional URL
          "client_variables": {"tg_username": "@ivan_petrov"},   // optional, string values
          "deal_variables": {}                        // optional, string values
        }
      ]
    }
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import http
import json
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal, Self, TypedDict
from urllib.parse import parse_qsl

from aiohttp import web

from sandbox.server import Fault, FaultPlan, LoopbackServer

DEFAULT_SEED = Path(__file__).parent / "data" / "salebot_clients.json"

CLIENT_PREFIX = "client."
MAX_NAME_LENGTH = 500
MAX_VALUE_LENGTH = 100_000
MAX_VARIABLES = 1_000

# DOC-VARS: a name starts with a letter and has only letters, digits and "_"; Latin is only
# "recommended" (public code reads Cyrillic names), so any Unicode letter is accepted.
_NAME_RE = re.compile(r"[^\W\d_]\w*")
# PHP-style form keys: ``variables[client.email]=...`` and ``platform_ids[]=...``.
_FORM_KEY_RE = re.compile(r"([^\[\]]+)\[([^\[\]]*)\]")
# Fields of ``callback`` that steer the call instead of being stored as variables.
_CALLBACK_CONTROL_FIELDS = frozenset(
    {
        "client_id",
        "client_email",
        "client_phone",
        "message",
        "resume_bot",
        "time_shift",
        "send_time",
    }
)

VariablesShape = Literal["flat", "nested"]
# How find_client_id_by_platform_id answers when nothing matches; undocumented (reference,
# "where the record is thin"): an empty array, HTTP 404, or HTTP 200 ``{"status": ...}``.
NoClientAnswer = Literal["empty_list", "http_404", "status_object"]
# How save_variables answers a success; undocumented: ``{"status": "success"}``, an empty body,
# or a body that is not JSON.
SavedAnswer = Literal["status", "empty", "text"]
_Reply = tuple[int, Any] | web.Response
_Handler = Callable[[dict[str, Any], Any], _Reply]

_CLIENT_NOT_FOUND: _Reply = (200, {"status": "client_not_found"})
_SUCCESS: _Reply = (200, {"status": "success"})


@dataclass
class SalebotClientRecord:
    """One Salebot client (a person in one channel)."""

    id: int
    platform_id: str
    group: str
    client_type: int = 1
    name: str = ""
    created_at: int = field(default_factory=lambda: int(time.time()))
    tag: str | None = None
    avatar: str | None = None
    client_variables: dict[str, str] = field(default_factory=dict)
    deal_variables: dict[str, str] = field(default_factory=dict)


@dataclass
class RecordedRequest:
    """One request as the stand-in saw it. The API key never appears here: ``path`` has it
    replaced by ``***``. ``status`` is filled in when the answer is sent (``None`` while a
    delayed answer is pending), so a request is visible as soon as it arrives."""

    action: str
    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int | None = None


class CallbackRecord(TypedDict):
    client_id: int
    message: str
    variables: dict[str, str]


class _BadRequest(Exception):
    """Answered as HTTP 400 ``{"status": "error", "message": ...}``."""


class SalebotStandIn(LoopbackServer):
    """Salebot's HTTP API for one project, with scriptable misbehaviour and inspection."""

    def __init__(
        self,
        *,
        api_key: str,
        telegram_bots: Sequence[str] = ("school_funnel_bot",),
        clients: Iterable[SalebotClientRecord] = (),
        variables_shape: VariablesShape = "flat",
        no_client_answer: NoClientAnswer = "empty_list",
        saved_answer: SavedAnswer = "status",
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.telegram_bots: list[str] = list(telegram_bots)
        # Real projects differ (docs/salebot-api.md, "Reading variables"): "nested" puts custom
        # variables under "variables".
        self.variables_shape: VariablesShape = variables_shape
        self.no_client_answer: NoClientAnswer = no_client_answer
        self.saved_answer: SavedAnswer = saved_answer
        self.faults = FaultPlan()
        self.requests: list[RecordedRequest] = []
        self.callbacks: list[CallbackRecord] = []
        self._down = False
        self._reject_key = False
        self._failure_rate = 0.0
        self._random = random.Random(0)
        # Set by stop() so that delayed answers end at once instead of holding up shutdown.
        self._stopping = asyncio.Event()
        self._clients: dict[int, SalebotClientRecord] = {}
        for record in clients:
            if record.id in self._clients:
                raise ValueError(f"duplicate Salebot client id {record.id}")
            # Copies, so that a test's (or the seed's) records are never changed behind its back.
            self._clients[record.id] = dataclasses.replace(
                record,
                client_variables=dict(record.client_variables),
                deal_variables=dict(record.deal_variables),
            )
        self._next_id = max(self._clients, default=836_058_000) + 1
        self._actions: dict[str, _Handler] = {
            "find_client_id_by_platform_id": self._find_client_id_by_platform_id,
            "save_variables": self._save_variables,
            "get_variables": self._get_variables,
            "callback": self._callback,
            "connected_channels": self._connected_channels,
            "load_clients": self._load_clients,
        }

    @classmethod
    def from_seed(
        cls,
        path: Path | None = None,
        *,
        api_key: str,
        telegram_bots: Sequence[str] | None = None,
        variables_shape: VariablesShape = "flat",
    ) -> Self:
        """Build a stand-in from a seed file (see the module docstring for its shape)."""
        data = json.loads((path or DEFAULT_SEED).read_text(encoding="utf-8"))
        if telegram_bots is None:
            telegram_bots = [str(bot) for bot in data.get("telegram_bots", ["school_funnel_bot"])]
        return cls(
            api_key=api_key,
            telegram_bots=telegram_bots,
            clients=[_record_from_seed(item) for item in data["clients"]],
            variables_shape=variables_shape,
        )

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._stopping.clear()
        return await super().start(host, port)

    async def stop(self) -> None:
        self._stopping.set()
        await super().stop()

    def api_url(self, action: str) -> str:
        """Full URL of an action, key included (for tests that call the stand-in directly)."""
        return f"{self.base_url}/api/{self.api_key}/{action}"

    def build_app(self) -> web.Application:
        app = web.Application()
        # One catch-all route, so that every request (even to a malformed path) is recorded.
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    # -- misbehaviour --------------------------------------------------------------------

    def fail_next(self, action: str, *, status: int = 500, times: int = 1) -> None:
        """The next ``times`` calls of ``action`` (or ``"*"``) answer a raw HTML error page."""
        self.faults.add(action, _html_fault(status), times)

    def delay_next(self, action: str, seconds: float, *, times: int = 1) -> None:
        """The next ``times`` calls of ``action`` answer normally, but only after ``seconds``."""
        self.faults.add(action, Fault(delay=seconds), times)

    def answer_client_not_found(self, action: str, times: int = 1) -> None:
        """HTTP 200 ``{"status": "client_not_found"}`` even for a known client."""
        self.faults.add(action, Fault(status=200, json_body={"status": "client_not_found"}), times)

    def set_down(self, down: bool = True) -> None:
        """While down, every request answers HTTP 503 with an HTML page (a proxy in front)."""
        self._down = down

    def fail_randomly(self, rate: float, *, seed: int = 0) -> None:
        """Answer HTTP 500 to this share of requests, chosen by a seeded generator (repeatable)."""
        self._failure_rate = rate
        self._random = random.Random(seed)

    def reject_key(self, flag: bool = True) -> None:
        """While set, even the right key is refused (a revoked key)."""
        self._reject_key = flag

    # -- inspection and setup ------------------------------------------------------------

    @property
    def clients(self) -> list[SalebotClientRecord]:
        """All clients, ordered by id (live records)."""
        return [self._clients[client_id] for client_id in sorted(self._clients)]

    def requests_of(self, action: str) -> list[RecordedRequest]:
        return [request for request in self.requests if request.action == action]

    def add_client(
        self,
        platform_id: str | int,
        *,
        group: str | None = None,
        name: str = "Demo client",
        client_type: int = 1,
    ) -> SalebotClientRecord:
        """Create a client; ``group`` defaults to the first Telegram bot."""
        record = SalebotClientRecord(
            id=self._take_id(),
            platform_id=str(platform_id),
            group=self._default_group() if group is None else group,
            client_type=client_type,
            name=name,
        )
        self._clients[record.id] = record
        return record

    def client(self, client_id: int) -> SalebotClientRecord | None:
        return self._clients.get(client_id)

    def client_by_platform_id(
        self, platform_id: str | int, group: str | None = None
    ) -> SalebotClientRecord | None:
        """The client with this platform id in ``group`` (default: the first Telegram bot)."""
        wanted_group = self._default_group() if group is None else group
        for record in self.clients:
            if record.platform_id == str(platform_id) and record.group == wanted_group:
                return record
        return None

    def client_variables(self, client_id: int) -> dict[str, str]:
        """A copy of the client's persistent variables (names without ``client.``)."""
        return dict(self._clients[client_id].client_variables)

    def deal_variables(self, client_id: int) -> dict[str, str]:
        """A copy of the variables of the client's current deal."""
        return dict(self._clients[client_id].deal_variables)

    def close_deal(self, client_id: int) -> None:
        """What a funnel's "red block" does: the deal ends and its variables are gone."""
        self._clients[client_id].deal_variables.clear()

    def _default_group(self) -> str:
        if not self.telegram_bots:
            raise ValueError("no Telegram bot is connected; pass group= explicitly")
        return self.telegram_bots[0]

    def _take_id(self) -> int:
        client_id = self._next_id
        self._next_id += 1
        return client_id

    # -- HTTP ----------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        parts = request.path.split("/")
        is_api = len(parts) >= 3 and parts[1] == "api"
        key = parts[2] if is_api else None
        action = parts[3] if is_api and len(parts) == 4 else ""
        if is_api:
            parts[2] = "***"
        path = "/".join(parts)
        if not is_api and self.api_key:
            # A malformed path (say "//api/KEY/x" from a base URL ending in "/") may hold the key.
            path = path.replace(self.api_key, "***")

        body_error: str | None = None
        try:
            body = await _read_body(request)
        except _BadRequest as exc:
            body, body_error = None, str(exc)
        record = RecordedRequest(
            action=action, method=request.method, path=path, query=dict(request.query), body=body
        )
        self.requests.append(record)

        response = await self._respond(record, key, body_error)
        record.status = response.status
        return response

    async def _respond(
        self, record: RecordedRequest, key: str | None, body_error: str | None
    ) -> web.Response:
        if self._down:
            return _html_fault(503).response()
        if self._failure_rate and self._random.random() < self._failure_rate:
            return _html_fault(500).response()
        if key is None or not record.action:
            return _json(404, {"status": "error", "message": "Not found"})
        # Nobody knows what a wrong key gets (docs/salebot-api.md); 401 + JSON is this
        # stand-in's pick.
        if self._reject_key or key != self.api_key:
            return _json(401, {"status": "error", "message": "Unauthorized"})

        fault = self.faults.take(record.action) or self.faults.take("*")
        if fault is not None:
            if fault.delay:
                await self._sleep(fault.delay)
            if fault.has_response():
                return fault.response()

        handler = self._actions.get(record.action)
        if handler is None:
            return _json(404, {"status": "error", "message": "Unknown action"})
        try:
            if body_error is not None:
                raise _BadRequest(body_error)
            reply = handler(_params(record.query, record.body), record.body)
        except _BadRequest as exc:
            return _json(400, {"status": "error", "message": str(exc)})
        if isinstance(reply, web.Response):
            return reply
        return _json(*reply)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    # -- actions -------------------------------------------------------------------------

    def _find_client_id_by_platform_id(self, params: dict[str, Any], body: Any) -> _Reply:
        raw_ids = params.get("platform_ids")
        if raw_ids is None:
            raise _BadRequest("platform_ids is required")
        # Compared as text: a number and its string form find the same client.
        wanted = {str(item) for item in (raw_ids if isinstance(raw_ids, list) else [raw_ids])}
        group = params.get("group_id")
        # Without group_id the search spans every channel of the project (inferred; see
        # docs/salebot-api.md, "Finding the person's client").
        group_filter = None if group in (None, "") else str(group)
        found = [
            _client_json(record)
            for record in self.clients
            if record.platform_id in wanted
            and (group_filter is None or record.group == group_filter)
        ]
        if found or self.no_client_answer == "empty_list":
            return 200, found
        if self.no_client_answer == "http_404":
            return 404, {"status": "error", "message": "Client not found"}
        return 200, {"status": "fail", "message": "Client not found"}

    def _save_variables(self, params: dict[str, Any], body: Any) -> _Reply:
        _require_object(body)
        variables = params.get("variables")
        if not isinstance(variables, dict):
            raise _BadRequest("variables must be an object")
        client_ids = [_parse_client_id(params["client_id"])] if "client_id" in params else []
        extra = params.get("clients", [])
        client_ids += [
            _parse_client_id(item) for item in (extra if isinstance(extra, list) else [extra])
        ]
        if not client_ids:
            raise _BadRequest("client_id is required")
        client_vars, deal_vars = _split_variables(variables)
        # All or nothing: every client must exist before anything is written.
        records: list[SalebotClientRecord] = []
        for client_id in client_ids:
            record = self._clients.get(client_id)
            if record is None:
                return _CLIENT_NOT_FOUND
            records.append(record)
        _store_variables(records, client_vars, deal_vars)
        if self.saved_answer == "empty":
            return web.Response(status=200)
        if self.saved_answer == "text":
            return web.Response(status=200, text="OK")
        return _SUCCESS

    def _get_variables(self, params: dict[str, Any], body: Any) -> _Reply:
        _require_object(body)
        if "client_id" not in params:
            raise _BadRequest("client_id is required")
        record = self._clients.get(_parse_client_id(params["client_id"]))
        if record is None:
            return _CLIENT_NOT_FOUND
        built_in = {
            "platform_id": record.platform_id,
            "client_id": str(record.id),
            "name": record.name,
            # Absent built-ins read "NONE" in public code (main_client_id, message_id); the same
            # is assumed for a missing avatar.
            "avatar": record.avatar or "NONE",
            "main_client_id": "NONE",
            "message_id": "NONE",
        }
        # Whether real Salebot merges deal variables here is unknown (docs/salebot-api.md); this
        # follows the in-bot lookup priority deal > client, so deal values win.
        custom = {**record.client_variables, **record.deal_variables}
        if self.variables_shape == "nested":
            return 200, {**built_in, "variables": custom}
        return 200, {**built_in, **custom}

    def _callback(self, params: dict[str, Any], body: Any) -> _Reply:
        _require_object(body)
        message = params.get("message")
        if message is None or message == "":
            raise _BadRequest("message is required")
        record = self._callback_target(params)
        if record is None:
            return _CLIENT_NOT_FOUND
        extra = {
            name: value for name, value in params.items() if name not in _CALLBACK_CONTROL_FIELDS
        }
        # Extra fields become variables; nobody knows where they land (docs/salebot-api.md), so they
        # go where save_variables would put them (deal unless prefixed with "client.").
        _store_variables([record], *_split_variables(extra))
        self.callbacks.append(
            {
                "client_id": record.id,
                "message": str(message),
                "variables": {name: _as_text(value) for name, value in extra.items()},
            }
        )
        return _SUCCESS

    def _callback_target(self, params: dict[str, Any]) -> SalebotClientRecord | None:
        if "client_id" in params:
            return self._clients.get(_parse_client_id(params["client_id"]))
        for field_name, variable in (("client_email", "email"), ("client_phone", "phone")):
            if field_name in params:
                wanted = str(params[field_name])
                return next(
                    (
                        record
                        for record in self.clients
                        if wanted
                        in (
                            record.client_variables.get(variable),
                            record.deal_variables.get(variable),
                        )
                    ),
                    None,
                )
        raise _BadRequest("client_id is required")

    def _connected_channels(self, params: dict[str, Any], body: Any) -> _Reply:
        # DOC-API shows only id/short_name/group_id for Telegram; "name" and the VK entries
        # are this stand-in's guess.
        telegram = [
            {"id": 101 + index, "short_name": bot, "group_id": bot, "name": bot}
            for index, bot in enumerate(self.telegram_bots)
        ]
        vk_groups = sorted({record.group for record in self.clients if record.client_type == 0})
        vk = [
            {
                "id": 201 + index,
                "short_name": f"club{group}",
                "group_id": group,
                "name": f"VK {group}",
            }
            for index, group in enumerate(vk_groups)
        ]
        return 200, {"status": "success", "telegram": telegram, "vk": vk}

    def _load_clients(self, params: dict[str, Any], body: Any) -> _Reply:
        if not isinstance(body, list):
            raise _BadRequest("the body must be a JSON array of clients")
        return 200, {"status": "success", "items": [self._load_client(item) for item in body]}

    def _load_client(self, item: Any) -> dict[str, Any]:
        if not isinstance(item, dict):
            return {"status": "error", "message": "each item must be an object"}
        if item.get("platform_id") in (None, "") or "client_type" not in item:
            return {
                **item,
                "status": "error",
                "message": "platform_id and client_type are required",
            }
        try:
            client_type = int(item["client_type"])
        except (TypeError, ValueError):
            return {**item, "status": "error", "message": "client_type must be an integer"}
        platform_id, group = str(item["platform_id"]), str(item.get("group_id") or "")
        # Get-or-create: whether Salebot reuses an existing client is unknown (docs/salebot-api.md).
        existing = next(
            (r for r in self.clients if r.platform_id == platform_id and r.group == group), None
        )
        if existing is None:
            existing = SalebotClientRecord(
                id=self._take_id(), platform_id=platform_id, group=group, client_type=client_type
            )
            self._clients[existing.id] = existing
        return {**item, "status": "success", "id": existing.id}


# -- helpers ---------------------------------------------------------------------------------


def _json(status: int, payload: Any) -> web.Response:
    return web.json_response(payload, status=status, dumps=partial(json.dumps, ensure_ascii=False))


def _html_fault(status: int) -> Fault:
    try:
        title = f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        title = str(status)
    page = (
        f"<html><head><title>{title}</title></head><body><center><h1>{title}</h1></center>"
        "<hr><center>nginx</center></body></html>"
    )
    return Fault(status=status, body=page, headers={"Content-Type": "text/html; charset=utf-8"})


async def _read_body(request: web.Request) -> Any:
    """JSON whatever the Content-Type says, else a form; ``None`` for an empty body."""
    if request.content_type == "multipart/form-data":
        form = await request.post()
        return _decode_form([(k, v) for k, v in form.items() if isinstance(v, str)])
    raw = await request.read()
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise _BadRequest("the body is not UTF-8") from None
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        if request.content_type == "application/json" or "=" not in text:
            raise _BadRequest("the body is not valid JSON") from None
    return _decode_form(parse_qsl(text, keep_blank_values=True))


def _decode_form(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """``a=1&a=2`` and ``a[]=1`` give lists, ``a[b]=1`` gives ``{"a": {"b": "1"}}``."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        match = _FORM_KEY_RE.fullmatch(key)
        if match is None:
            previous = out.get(key)
            if previous is None:
                out[key] = value
            elif isinstance(previous, list):
                previous.append(value)
            else:
                out[key] = [previous, value]
            continue
        name, inner = match.groups()
        container = out.get(name)
        if inner:
            if not isinstance(container, dict):
                out[name] = container = {}
            container[inner] = value
        else:
            if not isinstance(container, list):
                out[name] = container = []
            container.append(value)
    return out


def _params(query: Mapping[str, str], body: Any) -> dict[str, Any]:
    return {**query, **body} if isinstance(body, dict) else dict(query)


def _require_object(body: Any) -> None:
    if body is not None and not isinstance(body, dict):
        raise _BadRequest("the body must be a JSON object")


def _parse_client_id(value: Any) -> int:
    # Ints and digit strings are both seen in public code; floats and bools are refused.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise _BadRequest("client_id must be an integer")


def _split_variables(variables: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Validate names and values; ``client.x`` goes to client variables as ``x``, the rest to
    the deal."""
    client_vars: dict[str, str] = {}
    deal_vars: dict[str, str] = {}
    for full_name, raw_value in variables.items():
        is_client = full_name.startswith(CLIENT_PREFIX)
        name = full_name.removeprefix(CLIENT_PREFIX)
        if not _NAME_RE.fullmatch(name):
            raise _BadRequest(
                f"invalid variable name {full_name!r}: it must start with a letter and contain "
                "only letters, digits and '_'"
            )
        if len(name) > MAX_NAME_LENGTH:
            raise _BadRequest(f"variable name longer than {MAX_NAME_LENGTH} characters")
        value = _as_text(raw_value)
        if len(value) > MAX_VALUE_LENGTH:
            raise _BadRequest(f"value of {full_name!r} longer than {MAX_VALUE_LENGTH} characters")
        (client_vars if is_client else deal_vars)[name] = value
    return client_vars, deal_vars


def _store_variables(
    records: Sequence[SalebotClientRecord],
    client_vars: Mapping[str, str],
    deal_vars: Mapping[str, str],
) -> None:
    """Write to every record, or to none when one would exceed the variable limit."""
    for record in records:
        for kind, current, new in (
            ("client", record.client_variables, client_vars),
            ("deal", record.deal_variables, deal_vars),
        ):
            if len(current.keys() | new.keys()) > MAX_VARIABLES:
                raise _BadRequest(f"more than {MAX_VARIABLES} {kind} variables")
    for record in records:
        record.client_variables.update(client_vars)
        record.deal_variables.update(deal_vars)


def _as_text(value: Any) -> str:
    # Salebot keeps every value as a string.
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _client_json(record: SalebotClientRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "tag": record.tag,
        "created_at": record.created_at,
        "name": record.name,
        "avatar": record.avatar,
        "platform_id": record.platform_id,
        "group": record.group,
        "variables": dict(record.client_variables),
    }


def _record_from_seed(item: Mapping[str, Any]) -> SalebotClientRecord:
    tag, avatar = item.get("tag"), item.get("avatar")
    return SalebotClientRecord(
        id=int(item["id"]),
        platform_id=str(item["platform_id"]),
        group=str(item["group"]),
        client_type=int(item.get("client_type", 1)),
        name=str(item.get("name", "")),
        created_at=int(item.get("created_at", 0)),
        tag=None if tag is None else str(tag),
        avatar=None if avatar is None else str(avatar),
        client_variables={str(k): str(v) for k, v in item.get("client_variables", {}).items()},
        deal_variables={str(k): str(v) for k, v in item.get("deal_variables", {}).items()},
    )

"""GetCourse stand-in: the legacy import/export API (``/pl/api/...``) over real HTTP on loopback.

Follows ``docs/getcourse-api.md``: asynchronous users export (start → poll, 909 while
building), one export building at a time per account (905), a rolling budget of export-API
requests (903), errors as HTTP 200 with ``success: false``, custom-field columns in the middle
of the row, every cell a string, and the import endpoint with its two-level answer.

Endpoint names (used by ``faults``, ``fail_next`` and ``requests``):
``users`` (start export), ``exports`` (poll), ``groups``, ``fields``, ``import``,
``tech_get_fields`` (Tech API ``GET /pl/api/v1/user/get-fields?email=``), and
``unknown`` for any other path (404 with an HTML page, as a real account answers).

Tech API (only with ``tech_token`` set, ``"<developerKey>_<schoolKey>"``): Bearer auth, 403
"Нет доступа" on a wrong or missing token, 404 "Объект не найден" for an unknown email, else
``data`` as a list of one user; ``tech_api_missing`` makes it answer an HTML 404 page instead
(the Tech API not enabled for the school). It costs no export budget. Slow or failing answers
come from ``faults`` like every other endpoint.

Where the public record is thin (reference §9) the stand-in answers either way, switched by
attributes: ``email_filter_ignored`` (the ``email`` filter is taken but ignored: everyone comes
back), ``email_filter_unknown`` (``email`` is an unknown parameter: alone it leaves no filter,
908; with dates it is ignored), ``documented_statuses_only`` (``status`` other than ``active``
and ``in_base`` answers 914) and ``created_to_exclusive`` (``created_at[to]`` excludes its day).

``export_latency``: seconds an export takes to build (polls before then answer 909), for the
benchmarks; 0 (the default) leaves readiness to ``not_ready_polls``.

Order of checks for export-API requests: faults → ``wrong_subdomain`` → ``redirect_to`` →
key (904/901) → budget (903) → the endpoint itself; for a users export the 905 lock is checked
before the filters ("GetCourse checks it before it validates anything else").
Imports check ``action`` before the key: a redirected POST arrives as a bodyless GET and
GetCourse names the missing action, not the missing key.

What counts against the budget: every export-API request with the right key that is not
refused with 903 (903 answers are recorded but neither counted nor executed). A delay-only fault
is followed by the normal answer, so such a request is counted; a fault with a response is not.

Imports: a new e-mail creates an ``in_base`` user (``user_status: "added"``); a known one answers
``"updated"`` with ``system.refresh_if_exists`` and ``"active"`` (nothing changed) without it.
An ``addfields`` title the account does not have is silently dropped, or, with
``unknown_field_answer = "error"``, refused in ``result.error_message`` (§9: either may be
true). ``import_enabled = False`` answers HTTP 200 with an empty body and writes nothing (a plan
without the import API); HTTP 500 and the like come from ``faults`` on ``import``.

Seed file (``sandbox/data/getcourse_users.json``)::

    {
      "custom_fields": ["Telegram ID", "Тариф"],        // optional; titles of custom user fields
      "users": [
        {
          "id": 187654321,                              // int, unique
          "email": "ivan.petrov@example.com",           // stored as written (case kept)
          "first_name": "Иван", "last_name": "Петров",  // optional, default ""
          "phone": "+79161234567", "city": "Москва",    // optional, default ""
          "status": "active",          // active | in_base | deactivated | banned | invited
          "created_at": "2024-03-01 10:15:00",          // "YYYY-MM-DD HH:MM:SS"
          "custom": {"Тариф": "Базовый"},               // optional; field title -> value
          "utm_source": "yandex"                        // optional, default ""
        }
      ]
    }
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, Self, cast

from aiohttp import web

from sandbox.server import Fault, FaultPlan, LoopbackServer

UserStatus = Literal["active", "in_base", "deactivated", "banned", "invited"]
EmptyResultStyle = Literal["items", "error"]
UnknownFieldAnswer = Literal["drop", "error"]
Payload = dict[str, Any]

# The order GetCourse itself lists them in its 914 message.
USER_STATUSES: tuple[str, ...] = ("active", "deactivated", "banned", "invited", "in_base")

# The only ones GetCourse's help page documents as a users-export filter.
DOCUMENTED_STATUSES: tuple[str, ...] = ("active", "in_base")

DEFAULT_SEED_PATH = Path(__file__).parent / "data" / "getcourse_users.json"

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"

ERROR_MESSAGES: dict[int, str] = {
    901: "Неавторизованное API-обращение",
    903: "Слишком много запросов к API. Попробуйте позже",
    904: "отсутствует параметр key",
    905: "Уже запущен один экспорт, попробуйте позднее",
    908: "Должен быть передан хотя бы один фильтр",
    909: "Файл еще не создан",
    914: "Неверное значение в поле статус, попробуйте один из - " + ",".join(USER_STATUSES),
    917: "Функционал недоступен",
}

NOT_FOUND_MESSAGE = "Объект не найден"
EMPTY_EXPORT_MESSAGE = "Файл не создан, попробуйте другой фильтр"
# The messages below are GetCourse's own Russian text, so Cyrillic look-alikes are intended.
NO_CONTACT_MESSAGE = "Не указан ни эл. адрес, ни телефон"
EMPTY_ACTION_MESSAGE = "Пустой параметр action"
NO_PARAMS_MESSAGE = "Не указаны параметры"
FORBIDDEN_ACTION_MESSAGE = "Действие запрещено"

_LEADING_COLUMNS = (
    "id",
    "Email",
    "Тип регистрации",
    "Создан",
    "Последняя активность",
    "Имя",
    "Фамилия",
    "Телефон",
    "Город",
)
_TRAILING_COLUMNS = ("utm_source", "utm_medium")

_EXPORT_ENDPOINTS = frozenset({"users", "exports", "groups", "fields"})
_FILTER_NAMES = ("email", "status", "created_at[from]", "created_at[to]")
_UPDATABLE_USER_FIELDS = ("first_name", "last_name", "phone", "city")

_NOT_FOUND_PAGE = (
    "<!DOCTYPE html><html><head><title>404</title></head>"
    "<body><h1>Страница не найдена</h1></body></html>"
)


def _as_datetime(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.strptime(value, DATETIME_FORMAT)


def _now_to_the_second() -> datetime:
    return datetime.now().replace(microsecond=0)


def _cell(value: object) -> str:
    """Render an imported value the way GetCourse stores it: text, checkboxes as 1/0."""
    if isinstance(value, bool):
        return "1" if value else "0"
    return "" if value is None else str(value)


def _truthy(value: object) -> bool:
    # Clients send flags as 1, "1", true or "true".
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false")
    return bool(value)


def _digits(phone: str) -> str:
    return "".join(ch for ch in phone if ch.isdigit())


def _success(info: Any) -> Payload:
    return {"success": True, "error": False, "error_message": "", "info": info}


def _error(code: int, message: str | None = None) -> Payload:
    return {
        "success": False,
        "error": True,
        "error_code": code,
        "error_message": message if message is not None else ERROR_MESSAGES[code],
        "info": [],
    }


def _tech_error(code: int, message: str) -> web.Response:
    body = {"status": False, "message": message, "code": code, "errors": None, "data": None}
    return web.json_response(body, status=code)


def _import_call_error(message: str) -> Payload:
    # Call-level import failures carry the message as a string in top-level ``error``.
    return {"success": False, "error": message}


@dataclass
class GetCourseUserRecord:
    """One user of the stand-in account (mutable: imports update it in place)."""

    id: int
    email: str
    first_name: str = ""
    last_name: str = ""
    phone: str = ""
    status: UserStatus = "active"
    created_at: datetime | str = field(default_factory=_now_to_the_second)
    city: str = ""
    custom: dict[str, str] = field(default_factory=dict)
    utm_source: str = ""

    def __post_init__(self) -> None:
        if self.status not in USER_STATUSES:
            raise ValueError(f"unknown GetCourse user status {self.status!r}")
        _as_datetime(self.created_at)  # fail early on a malformed date string

    @property
    def created(self) -> datetime:
        return _as_datetime(self.created_at)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GetCourseUserRecord:
        custom = data.get("custom") or {}
        return cls(
            id=int(data["id"]),
            email=str(data["email"]),
            first_name=str(data.get("first_name", "")),
            last_name=str(data.get("last_name", "")),
            phone=str(data.get("phone", "")),
            status=cast(UserStatus, str(data.get("status", "active"))),  # checked on init
            created_at=str(data["created_at"]),
            city=str(data.get("city", "")),
            custom={str(k): str(v) for k, v in custom.items()},
            utm_source=str(data.get("utm_source", "")),
        )


@dataclass(frozen=True)
class GetCourseGroup:
    id: int
    name: str
    last_added_at: str


@dataclass
class RecordedRequest:
    """One request as the stand-in saw it; ``params`` never contains the key."""

    method: str
    endpoint: str
    path: str
    params: dict[str, str]
    at: float
    counted: bool = False
    error_code: int | None = None


@dataclass
class _Export:
    id: int
    fields: list[str]
    items: list[list[str]]
    started_at: float = 0.0
    polls: int = 0
    ready: bool = False


# An endpoint body: runs after faults, switches, key and budget checks.
_Action = Callable[[web.Request, dict[str, str]], Awaitable[Payload]]


def load_seed(path: Path = DEFAULT_SEED_PATH) -> tuple[list[GetCourseUserRecord], list[str] | None]:
    """Users and (if the file names them) custom field titles from a seed file."""
    data = json.loads(path.read_text(encoding="utf-8"))
    users = [GetCourseUserRecord.from_json(item) for item in data["users"]]
    fields = data.get("custom_fields")
    return users, None if fields is None else [str(title) for title in fields]


class GetCourseStandIn(LoopbackServer):
    """A GetCourse account serving the legacy API on 127.0.0.1."""

    # How the account answers what the public record leaves open (docs/getcourse-api.md, "Open
    # questions"): one answer by default, the other when a test sets the switch on the instance.
    # get-fields answers an HTML 404 page instead of its JSON envelope (the Tech API not
    # enabled, or a domain that does not serve /pl/api/v1).
    tech_api_missing = False
    # An export matching nobody: an empty items list, or the "другой фильтр" error.
    empty_result_style: EmptyResultStyle = "items"
    # The email filter of an export: ignored (everyone comes back), or unknown (alone: 908).
    email_filter_ignored = False
    email_filter_unknown = False
    # status= accepts only the statuses GetCourse's help documents (914 for the others).
    documented_statuses_only = False
    # created_at[to] leaves its own day out.
    created_to_exclusive = False
    # An import naming a custom field the account lacks: the field dropped, or an error.
    unknown_field_answer: UnknownFieldAnswer = "drop"
    # Not open questions, but account states: a mistyped subdomain (404 "Wrong subdomain"
    # everywhere), an import API that answers an empty 200.
    wrong_subdomain = False
    import_enabled = True

    def __init__(
        self,
        *,
        api_key: str,
        users: Iterable[GetCourseUserRecord] = (),
        custom_fields: Sequence[str] = ("Telegram ID", "Тариф"),
        budget: int = 100,
        window_seconds: float = 7200.0,
        not_ready_polls: int = 0,
        clock: Callable[[], float] = time.monotonic,
        tech_token: str | None = None,
        export_latency: float = 0.0,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.tech_token = tech_token
        self.custom_fields: list[str] = list(custom_fields)
        self.budget = budget
        self.window_seconds = window_seconds
        self.faults = FaultPlan()
        self.clock = clock
        # Read at every poll, so a test can hold an export "building" and release it later.
        self.not_ready_polls = not_ready_polls
        self.export_latency = export_latency
        self.groups: list[GetCourseGroup] = [
            GetCourseGroup(4848962, "Клуб", "2025-06-22 11:44:29"),
            GetCourseGroup(4848963, "Покупатели курса «Старт»", "2025-05-30 09:12:03"),
        ]
        self.users: list[GetCourseUserRecord] = []
        self.requests: list[RecordedRequest] = []
        self.imports: list[dict[str, Any]] = []
        self._redirect_url: str | None = None
        self._exports: dict[int, _Export] = {}
        self._export_ids = itertools.count(23456789)
        self._window: deque[float] = deque()
        for user in users:
            self.add_user(user)

    @classmethod
    def from_seed(cls, path: Path | None = None, **kwargs: Any) -> Self:
        """Build from a seed file; ``custom_fields`` from the file unless given in kwargs."""
        users, custom_fields = load_seed(path or DEFAULT_SEED_PATH)
        if custom_fields is not None:
            kwargs.setdefault("custom_fields", custom_fields)
        return cls(users=users, **kwargs)

    # ----- inspection and control (Python API for tests) -----

    def add_user(self, record: GetCourseUserRecord) -> GetCourseUserRecord:
        if any(user.id == record.id for user in self.users):
            raise ValueError(f"duplicate GetCourse user id {record.id}")
        if record.email and self.user_by_email(record.email) is not None:
            raise ValueError(f"duplicate GetCourse e-mail {record.email!r}")
        self.users.append(record)
        return record

    def user_by_email(self, email: str) -> GetCourseUserRecord | None:
        wanted = email.strip().lower()
        return next((u for u in self.users if u.email.strip().lower() == wanted), None)

    def fail_next(self, endpoint: str, *, error_code: int, times: int = 1) -> None:
        """Answer the next ``times`` requests to ``endpoint`` with a GetCourse error envelope."""
        if error_code not in ERROR_MESSAGES:
            raise ValueError(f"no known message for error code {error_code}")
        self.faults.add(endpoint, Fault(json_body=_error(error_code)), times=times)

    def redirect_to(self, url: str | None) -> None:
        """Answer every request with 301 to ``url`` (``None`` turns it off)."""
        self._redirect_url = None if url is None else url.rstrip("/")

    def complete_exports(self) -> None:
        """Finish every export still building (releases the one-export lock without polling)."""
        for export in self._exports.values():
            export.ready = True

    def export_requests_in_window(self) -> int:
        self._expire_window(self.clock())
        return len(self._window)

    def exports_started(self) -> int:
        return len(self._exports)

    # ----- HTTP -----

    def build_app(self) -> web.Application:
        app = web.Application()
        routes: list[tuple[str, str, _Action]] = [
            ("/pl/api/account/users", "users", self._start_export),
            ("/pl/api/account/exports/{export_id}", "exports", self._poll_export),
            ("/pl/api/account/groups", "groups", self._list_groups),
            ("/pl/api/account/fields", "fields", self._list_fields),
            ("/pl/api/users", "import", self._import),
        ]
        for path, endpoint, action in routes:
            app.router.add_route("*", path, self._handler(endpoint, action))
        app.router.add_get("/pl/api/v1/user/get-fields", self._tech_get_fields)
        app.router.add_route("*", "/{tail:.*}", self._handler("unknown", None))
        return app

    def _handler(
        self, endpoint: str, action: _Action | None
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            params = dict(request.query)
            if request.method == "POST":
                form = await request.post()
                params.update((k, v) for k, v in form.items() if isinstance(v, str))
            key = params.pop("key", "")
            record = RecordedRequest(
                method=request.method,
                endpoint=endpoint,
                path=request.path,
                params=params,
                at=self.clock(),
            )
            # Recorded on arrival so the log keeps arrival order even when a fault delays.
            self.requests.append(record)

            fault = self.faults.take(endpoint)
            if fault is not None:
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                if fault.has_response():
                    body = fault.json_body
                    code = body.get("error_code") if isinstance(body, dict) else None
                    record.error_code = code if isinstance(code, int) else None
                    return fault.response()
            if self.wrong_subdomain:
                return web.Response(status=404, text="Wrong subdomain")
            if self._redirect_url is not None:
                # Real redirects keep the query string, which is how the key leaks when followed.
                location = f"{self._redirect_url}{request.path_qs}"
                return web.Response(status=301, headers={"Location": location})
            if action is None:
                return web.Response(status=404, text=_NOT_FOUND_PAGE, content_type="text/html")
            if endpoint == "import" and not self.import_enabled:
                return web.Response(status=200, body=b"")

            payload = await self._authorised(request, endpoint, key, params, record, action)
            code = payload.get("error_code")
            record.error_code = code if isinstance(code, int) else None
            return web.json_response(payload)

        return handle

    async def _authorised(
        self,
        request: web.Request,
        endpoint: str,
        key: str,
        params: dict[str, str],
        record: RecordedRequest,
        action: _Action,
    ) -> Payload:
        if endpoint == "import" and not params.get("action"):
            return _import_call_error(EMPTY_ACTION_MESSAGE)
        if not key:
            return _error(904)
        if key != self.api_key:
            return _error(901)
        if endpoint in _EXPORT_ENDPOINTS:
            self._expire_window(record.at)
            if len(self._window) >= self.budget:
                return _error(903)
            self._window.append(record.at)
            record.counted = True
        return await action(request, params)

    def _expire_window(self, now: float) -> None:
        while self._window and self._window[0] <= now - self.window_seconds:
            self._window.popleft()

    # ----- export API -----

    async def _start_export(self, request: web.Request, params: dict[str, str]) -> Payload:
        if any(not export.ready for export in self._exports.values()):
            return _error(905)

        has_filter = False
        emails: set[str] | None = None
        raw_emails = "" if self.email_filter_unknown else params.get("email", "").strip()
        if raw_emails:
            has_filter = True
            emails = {e.strip().lower() for e in raw_emails.split(",") if e.strip()}
        status = params.get("status", "").strip()
        if status:
            if status not in USER_STATUSES or (
                self.documented_statuses_only and status not in DOCUMENTED_STATUSES
            ):
                return _error(914)
            has_filter = True
        # An unreadable date is ignored rather than refused: nothing shows GetCourse rejects it.
        created_from = self._date_param(params, "created_at[from]")
        created_to = self._date_param(params, "created_at[to]")
        has_filter = has_filter or created_from is not None or created_to is not None
        if not has_filter:
            return _error(908)

        if self.email_filter_ignored:
            emails = None
        matched = [
            user
            for user in self.users
            if (emails is None or user.email.strip().lower() in emails)
            and (not status or user.status == status)
            and (created_from is None or user.created.date() >= created_from)
            and (created_to is None or self._before_to(user.created.date(), created_to))
        ]
        export = _Export(
            id=next(self._export_ids),
            started_at=self.clock(),
            fields=self._export_fields(),
            items=[self._export_row(user) for user in matched],
        )
        self._exports[export.id] = export
        return _success({"export_id": export.id})

    def _before_to(self, day: date, created_to: date) -> bool:
        return day < created_to if self.created_to_exclusive else day <= created_to

    @staticmethod
    def _date_param(params: dict[str, str], name: str) -> date | None:
        try:
            return datetime.strptime(params.get(name, "").strip(), "%Y-%m-%d").date()
        except ValueError:
            return None

    def _export_fields(self) -> list[str]:
        return [*_LEADING_COLUMNS, *self.custom_fields, *_TRAILING_COLUMNS]

    def _export_row(self, user: GetCourseUserRecord) -> list[str]:
        return [
            str(user.id),
            user.email,
            "",
            user.created.strftime(DATETIME_FORMAT),
            "",
            user.first_name,
            user.last_name,
            user.phone,
            user.city,
            *(user.custom.get(title, "") for title in self.custom_fields),
            user.utm_source,
            "",
        ]

    async def _poll_export(self, request: web.Request, params: dict[str, str]) -> Payload:
        try:
            export = self._exports.get(int(request.match_info["export_id"]))
        except ValueError:
            export = None
        if export is None:
            return {"success": False, "error": True, "error_message": NOT_FOUND_MESSAGE}
        if not export.ready:
            if self.clock() - export.started_at < self.export_latency:
                return _error(909)
            if export.polls < self.not_ready_polls:
                export.polls += 1
                return _error(909)
            export.ready = True
        if not export.items and self.empty_result_style == "error":
            return {"success": False, "error": True, "error_message": EMPTY_EXPORT_MESSAGE}
        return {"success": True, "info": {"fields": export.fields, "items": export.items}}

    # ----- Tech API -----

    async def _tech_get_fields(self, request: web.Request) -> web.StreamResponse:
        record = RecordedRequest(
            method=request.method,
            endpoint="tech_get_fields",
            path=request.path,
            params=dict(request.query),
            at=self.clock(),
        )
        self.requests.append(record)
        fault = self.faults.take("tech_get_fields")
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.has_response():
                return fault.response()
        if self.tech_api_missing:
            return web.Response(status=404, text=_NOT_FOUND_PAGE, content_type="text/html")
        if self.tech_token is None or request.headers.get("Authorization") != (
            f"Bearer {self.tech_token}"
        ):
            return _tech_error(403, "Нет доступа")
        user = self.user_by_email(request.query.get("email", ""))
        if user is None:
            return _tech_error(404, NOT_FOUND_MESSAGE)
        data = {
            "id": user.id,
            "email": user.email,
            "status": user.status,
            "type": "user",
            "first_name": user.first_name,
            "last_name": user.last_name,
            "phone": user.phone,
            "city": user.city,
            "created_at": user.created.strftime(DATETIME_FORMAT),
            "deleted": False,
        }
        return web.json_response(
            {"status": True, "message": "", "code": 200, "errors": [], "data": [data]}
        )

    async def _list_groups(self, request: web.Request, params: dict[str, str]) -> Payload:
        return _success(
            [{"id": g.id, "name": g.name, "last_added_at": g.last_added_at} for g in self.groups]
        )

    async def _list_fields(self, request: web.Request, params: dict[str, str]) -> Payload:
        return _success(
            [
                {
                    "id": 1001 + position,
                    "type": "text",
                    "title": title,
                    "required": False,
                    "field_order_pos": position,
                    "params": [],
                    "form_id": None,
                    "context_type": "user",
                }
                for position, title in enumerate(self.custom_fields)
            ]
        )

    # ----- import API -----

    async def _import(self, request: web.Request, params: dict[str, str]) -> Payload:
        action = params["action"]
        if action != "add":
            return _import_call_error(FORBIDDEN_ACTION_MESSAGE)
        try:
            decoded = json.loads(base64.b64decode(params.get("params", ""), validate=True))
        except ValueError:  # bad base64 and bad JSON/UTF-8 alike
            decoded = None
        if not isinstance(decoded, dict) or not decoded:
            return _import_call_error(NO_PARAMS_MESSAGE)
        self.imports.append(decoded)
        return {"success": True, "action": "add", "result": self._import_user(decoded)}

    def _import_user(self, params: dict[str, Any]) -> Payload:
        user_part = params.get("user")
        user_data: dict[str, Any] = user_part if isinstance(user_part, dict) else {}
        system_part = params.get("system")
        system: dict[str, Any] = system_part if isinstance(system_part, dict) else {}
        session_part = params.get("session")
        session: dict[str, Any] = session_part if isinstance(session_part, dict) else {}

        email = _cell(user_data.get("email")).strip()
        phone = _cell(user_data.get("phone")).strip()
        if not email and not phone:
            return {"success": False, "error": True, "error_message": NO_CONTACT_MESSAGE}

        # Matched by e-mail; phone is only the fallback when no e-mail was sent.
        existing = self.user_by_email(email) if email else self._user_by_phone(phone)
        if existing is None:
            user = self.add_user(
                GetCourseUserRecord(
                    id=max((u.id for u in self.users), default=100000000) + 1,
                    email=email,
                    status="in_base",
                    utm_source=_cell(session.get("utm_source")),
                )
            )
            self._apply_import(user, user_data)
            status = "added"
        elif _truthy(system.get("refresh_if_exists")):
            if (unknown := self._unknown_field(user_data)) is not None:
                return {"success": False, "error": True, "error_message": unknown}
            user = existing
            self._apply_import(user, user_data)
            status = "updated"
        else:
            # Without refresh_if_exists a known user is left untouched, groups included.
            user = existing
            status = "active"
        return {
            "success": True,
            "user_id": user.id,
            "user_status": status,
            "error": False,
            "error_message": "",
        }

    def _unknown_field(self, user_data: dict[str, Any]) -> str | None:
        """The refusal of an ``addfields`` title the account lacks, when told to refuse."""
        addfields = user_data.get("addfields")
        if self.unknown_field_answer != "error" or not isinstance(addfields, dict):
            return None
        for title in addfields:
            if title not in self.custom_fields:
                return f"Дополнительное поле «{title}» не найдено"
        return None

    def _user_by_phone(self, phone: str) -> GetCourseUserRecord | None:
        wanted = _digits(phone)
        return next((u for u in self.users if wanted and _digits(u.phone) == wanted), None)

    def _apply_import(self, user: GetCourseUserRecord, user_data: dict[str, Any]) -> None:
        # Only fields present in the request change; omitted ones are kept.
        for name in _UPDATABLE_USER_FIELDS:
            if name in user_data:
                setattr(user, name, _cell(user_data[name]))
        addfields = user_data.get("addfields")
        if isinstance(addfields, dict):
            for title, value in addfields.items():
                # Titles must match exactly; GetCourse silently drops any other key.
                if title in self.custom_fields:
                    user.custom[title] = _cell(value)

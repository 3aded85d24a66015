"""Salebot API: find the client of a Telegram user, write and read client variables.

Per ``docs/salebot-api.md``: the key is a path segment (so URLs are never logged), answers
differ in shape by endpoint, and HTTP 200 with a non-success ``status`` is an error."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from services.errors import (
    SalebotBadResponse,
    SalebotCallbackUncertain,
    SalebotClientNotFound,
    SalebotRejected,
    SalebotUnavailable,
)
from services.health import SALEBOT, CallTracker

log = logging.getLogger(__name__)

SUCCESS_STATUSES = frozenset({"success", "ok"})
STATUS_ANSWER_KEYS = frozenset({"status", "message"})
# Answers that refuse the key itself (the stand-in's pick for a wrong key is 401).
KEY_REFUSED = frozenset({401, 403})


class SalebotClientMatch(BaseModel):
    """One element of the ``find_client_id_by_platform_id`` array."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    id: int
    platform_id: str
    group: str | None = None


class SalebotChannel(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    group_id: str | None = None
    short_name: str | None = None
    platform: str = ""  # the key it was listed under: "telegram", "vk"...


_MATCHES = TypeAdapter(list[SalebotClientMatch])


class SalebotClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        api_key: str,
        bot_username: str,
        calls: CallTracker | None = None,
    ) -> None:
        self._http = http
        self._api_key = api_key
        self.bot_username = bot_username
        self._calls = calls or CallTracker()

    async def find_client_id(self, telegram_id: int) -> int:
        """The Salebot client of this Telegram user in our funnel bot; raises
        ``SalebotClientNotFound`` if there is none (yet)."""
        action = "find_client_id_by_platform_id"
        with self._calls.track(SALEBOT, action):
            answer = await self._request(
                action, json={"platform_ids": [str(telegram_id)], "group_id": self.bot_username}
            )
            _refuse_unavailable(action, answer)
            if answer.http_status in KEY_REFUSED:
                raise SalebotRejected(f"{action}: HTTP {answer.http_status}", answer.http_status)
            if 400 <= answer.http_status < 500:
                # How "no match" is answered is undocumented (reference, "where the record is
                # thin"): a 4xx such as 404 is one of the shapes seen, whatever its body.
                raise SalebotClientNotFound(
                    f"{action}: HTTP {answer.http_status}, no client", answer.http_status
                )
            body = _json_body(action, answer)
            _refuse_non_2xx(action, answer)
            if isinstance(body, dict) and "status" in body:
                # Another shape seen: ``{"status": ...}``; with no client list, whatever the
                # status says, there is no client yet.
                clients = body.get("clients")
                if not isinstance(clients, list):
                    raise SalebotClientNotFound(
                        f"{action}: status {_status_text(body)!r}, no client", answer.http_status
                    )
                body = clients
        try:
            matches = _MATCHES.validate_python(body)
        except ValidationError as error:
            raise SalebotBadResponse(f"{action}: not a client list") from error
        # The search can cross channels (a VK id may equal a Telegram id): keep only ours.
        ours = sorted(
            match.id
            for match in matches
            # Telegram usernames ignore case; Salebot may keep the case the bot was added with.
            if match.platform_id == str(telegram_id)
            and (match.group or "").casefold() == self.bot_username.casefold()
        )
        if not ours:
            raise SalebotClientNotFound(f"no Salebot client for telegram {telegram_id}")
        if len(ours) > 1:
            log.warning(
                "salebot has %d clients for telegram %s; using %s", len(ours), telegram_id, ours[0]
            )
        return ours[0]

    async def save_variables(self, client_id: int, variables: dict[str, str]) -> None:
        """Raises unless the write landed. The success body is undocumented: a 2xx with an empty
        or non-JSON body has landed (public clients check only the HTTP status)."""
        action = "save_variables"
        with self._calls.track(SALEBOT, action):
            answer = await self._request(
                action, json={"client_id": client_id, "variables": variables}
            )
            if 200 <= answer.http_status < 300 and not answer.is_json:
                return
            _checked(action, answer)

    async def callback(self, client_id: int, message: str) -> None:
        """Start the funnel block whose trigger is ``message`` (reference §5). Not idempotent:
        only a failure that surely did not reach Salebot (no connection, HTTP 429, a refusal)
        is raised as retryable; anything that may have landed is ``SalebotCallbackUncertain``."""
        action = "callback"
        with self._calls.track(SALEBOT, action):
            try:
                response = await self._http.post(
                    f"/api/{self._api_key}/{action}",
                    json={"client_id": client_id, "message": message},
                )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
                raise SalebotUnavailable(f"{action}: {type(error).__name__}") from error
            except httpx.HTTPError as error:
                raise SalebotCallbackUncertain(
                    f"{action}: {type(error).__name__} after sending"
                ) from error
            status = response.status_code
            if status == 429:
                raise SalebotUnavailable(f"{action}: HTTP 429", status)
            if status >= 500:
                raise SalebotCallbackUncertain(f"{action}: HTTP {status}", status)
            try:
                body = response.json()
            except ValueError:
                body = None  # the answer is undocumented: a 2xx without JSON has landed
            if isinstance(body, dict) and "status" in body:
                _check_status(action, status, body)
            if not 200 <= status < 300:
                raise SalebotRejected(f"{action}: HTTP {status}", status)

    async def get_variables(self, client_id: int) -> dict[str, str]:
        # A project may keep its own variable called "status", so only an answer that holds
        # nothing but a status (and its message) is read as one.
        body = await self._get(
            "get_variables", {"client_id": str(client_id)}, status_only_if_alone=True
        )
        if not isinstance(body, dict):
            raise SalebotBadResponse("get_variables: not an object")
        nested = body.get("variables")
        source = nested if isinstance(nested, dict) else body
        return {str(name): "" if value is None else str(value) for name, value in source.items()}

    async def connected_channels(self) -> list[SalebotChannel]:
        """Every channel of the project, flattened across platforms."""
        body = await self._get("connected_channels")
        if not isinstance(body, dict):
            raise SalebotBadResponse("connected_channels: not an object")
        channels = []
        for platform, value in body.items():
            if isinstance(value, list):
                for item in value:
                    try:
                        channel = SalebotChannel.model_validate(item)
                    except ValidationError:
                        continue
                    channels.append(channel.model_copy(update={"platform": platform}))
        return channels

    async def _get(
        self,
        action: str,
        params: dict[str, str] | None = None,
        *,
        status_only_if_alone: bool = False,
    ) -> Any:
        """The JSON body of a successful GET; raises the typed error of any other answer."""
        with self._calls.track(SALEBOT, action):
            answer = await self._request(action, params=params)
            return _checked(action, answer, status_only_if_alone=status_only_if_alone)

    async def _request(
        self, action: str, *, json: Any = None, params: dict[str, str] | None = None
    ) -> _Answer:
        """A POST of ``json``, or else a GET with ``params``."""
        verb = "POST" if json is not None else "GET"
        try:
            response = await self._http.request(
                verb, f"/api/{self._api_key}/{action}", json=json, params=params
            )
        except httpx.TimeoutException as error:
            raise SalebotUnavailable(f"{action}: timed out") from error
        except httpx.HTTPError as error:
            # The URL, and so the key, may be in the exception text: name only its type.
            raise SalebotUnavailable(f"{action}: {type(error).__name__}") from error
        try:
            return _Answer(response.status_code, response.json(), is_json=True)
        except ValueError:
            return _Answer(response.status_code, None, is_json=False)


@dataclass(frozen=True)
class _Answer:
    http_status: int
    body: Any
    is_json: bool  # False for an empty or non-JSON body


def _checked(action: str, answer: _Answer, *, status_only_if_alone: bool = False) -> Any:
    """The body of an answer that is a success by the general rule: HTTP 2xx, JSON, and no
    ``status`` or a successful one."""
    _refuse_unavailable(action, answer)
    body = _json_body(action, answer)
    has_status = isinstance(body, dict) and "status" in body
    if has_status and (not status_only_if_alone or set(body) <= STATUS_ANSWER_KEYS):
        _check_status(action, answer.http_status, body)
    _refuse_non_2xx(action, answer)
    return body


def _refuse_unavailable(action: str, answer: _Answer) -> None:
    if answer.http_status == 429 or answer.http_status >= 500:
        raise SalebotUnavailable(f"{action}: HTTP {answer.http_status}", answer.http_status)


def _json_body(action: str, answer: _Answer) -> Any:
    if not answer.is_json:
        raise SalebotBadResponse(
            f"{action}: HTTP {answer.http_status}, body is not JSON", answer.http_status
        )
    return answer.body


def _refuse_non_2xx(action: str, answer: _Answer) -> None:
    if not 200 <= answer.http_status < 300:
        raise SalebotRejected(f"{action}: HTTP {answer.http_status}", answer.http_status)


def _status_text(body: dict[str, Any]) -> str:
    return str(body.get("status", "")).strip().lower()


def _check_status(action: str, http_status: int, body: dict[str, Any]) -> None:
    status = _status_text(body)
    if status in SUCCESS_STATUSES:
        return
    if status == "client_not_found":
        raise SalebotClientNotFound(f"{action}: client_not_found", http_status)
    detail = str(body.get("message") or status)[:200]
    raise SalebotRejected(f"{action}: HTTP {http_status} {detail}", http_status)

"""One Bot API call as the stand-in receives it: parameters read and decoded the way Telegram
does, typed accessors that fail like Telegram, and errors in the Bot API envelope."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from aiohttp import web

from sandbox.telegram.records import UploadedFile

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


class ApiError(Exception):
    """An error answer in the Bot API envelope; methods raise it, the dispatcher renders it."""

    def __init__(
        self, error_code: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.parameters = parameters

    @classmethod
    def scripted(
        cls, error_code: int, description: str | None, retry_after: int | None
    ) -> ApiError:
        """The error a test asks for: a 429 waits a second unless told otherwise, and the
        description is Telegram's wording for the code unless given."""
        if error_code == 429 and retry_after is None:
            retry_after = 1
        if description is None:
            description = (
                f"Too Many Requests: retry after {retry_after}"
                if error_code == 429
                else _default_description(error_code)
            )
        return cls(
            error_code, description, None if retry_after is None else {"retry_after": retry_after}
        )

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


def _default_description(error_code: int) -> str:
    try:
        return HTTPStatus(error_code).phrase
    except ValueError:
        return "Error"


@dataclass(frozen=True)
class ApiRequest:
    """Decoded parameters of one API call with typed accessors that fail like Telegram does."""

    params: dict[str, Any]
    uploads: dict[str, UploadedFile]

    def get_int(self, name: str, default: int | None = None) -> int:
        value = self.params.get(name)
        if value is None or value == "":
            if default is None:
                raise ApiError(400, f"Bad Request: {name} is empty")
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ApiError(400, f"Bad Request: invalid {name} specified") from None

    def get_str(self, name: str) -> str | None:
        value = self.params.get(name)
        return None if value is None else str(value)

    def get_bool(self, name: str) -> bool:
        return self.params.get(name) in (True, "true")

    def get_object(self, name: str) -> dict[str, Any] | None:
        value = self.params.get(name)
        if value is None or isinstance(value, dict):
            return value
        raise ApiError(400, f"Bad Request: can't parse {name} JSON object")

    def get_list(self, name: str) -> list[Any] | None:
        value = self.params.get(name)
        if value is None or isinstance(value, list):
            return value
        raise ApiError(400, f"Bad Request: can't parse {name} JSON array")

    def chat_id(self) -> int:
        value = self.params.get("chat_id")
        if isinstance(value, str) and value.startswith("@"):
            raise ApiError(400, "Bad Request: chat not found")
        return self.get_int("chat_id")


# A Bot API method as the stand-in implements it: the call in, the "result" out.
ApiMethod = Callable[[ApiRequest], Awaitable[object]]


async def read_request(
    request: web.Request, to_upload: Callable[[web.FileField], UploadedFile]
) -> ApiRequest:
    """Merge query string and body (JSON, urlencoded or multipart) like the real API does;
    ``to_upload`` turns each file part into an :class:`UploadedFile`."""
    params: dict[str, Any] = {key: _decode(key, value) for key, value in request.query.items()}
    uploads: dict[str, UploadedFile] = {}
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "Bad Request: can't parse JSON object") from None
        if not isinstance(body, dict):
            raise ApiError(400, "Bad Request: can't parse JSON object")
        params.update(body)
    elif request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        for key, value in (await request.post()).items():
            if isinstance(value, web.FileField):
                uploads[key] = to_upload(value)
            else:
                text = value if isinstance(value, str) else value.decode()
                params[key] = _decode(key, text)
    return ApiRequest(params, uploads)


def _decode(name: str, value: str) -> Any:
    if name in _STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value

"""GetCourse import API (``POST /pl/api/users``, ``action=add``) used for one thing only: writing
additional fields of a user GetCourse already holds (``reference/getcourse-api.md`` §3, §9).

``params`` is base64 of ``{"user": {"email", "addfields": {title: value}}, "system":
{"refresh_if_exists": 1}}``. Both levels of the answer are checked: the outer ``success`` only
says the call was understood, ``result.error`` says the import itself was refused. The answer's
``user_id`` must be the link's GetCourse user: ``action=add`` would create a user for an unknown
email, and a write that landed on someone else is an error, not a success. Every request is
recorded in the import API's own ledger (``ImportBudget``), never in the export budget."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import httpx

from services.email import mask_email
from services.errors import (
    GetCourseApiError,
    GetCourseBadResponse,
    GetCourseConfigError,
    GetCourseFieldRejected,
    GetCourseUnavailable,
    GetCourseUserMismatch,
)
from services.getcourse.budget import ImportBudget
from services.getcourse.exports import _check_status as check_http_status
from services.getcourse.exports import _describe_body as describe_body
from services.health import GETCOURSE, CallTracker

log = logging.getLogger(__name__)

IMPORT_PATH = "/pl/api/users"
# "Действие запрещено": the key may read but not import.
FORBIDDEN_MARK = "запрещено"


class GetCourseImportClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        api_key: str,
        budget: ImportBudget,
        calls: CallTracker | None = None,
    ) -> None:
        self._http = http
        self._api_key = api_key
        self._budget = budget
        self._calls = calls or CallTracker()

    async def update_fields(self, email: str, gc_user_id: str, fields: dict[str, str]) -> None:
        """Write ``fields`` (title -> text) into the user of ``email``, who must be
        ``gc_user_id``. Raises ``GetCourseBudgetExhausted`` (nothing sent),
        ``GetCourseUnavailable``/``GetCourseBadResponse`` (worth retrying: a field update with
        ``refresh_if_exists`` writes the same values again), ``GetCourseFieldRejected`` and
        other ``GetCourseConfigError`` (the school's setup), ``GetCourseUserMismatch``."""
        params = {
            "user": {"email": email, "addfields": fields},
            "system": {"refresh_if_exists": 1},
        }
        encoded = base64.b64encode(json.dumps(params, ensure_ascii=False).encode()).decode()
        await self._budget.spend("fields")
        with self._calls.track(GETCOURSE, "import_fields"):
            try:
                # ``data=`` percent-encodes the base64 (``+ / =``) in the form body.
                response = await self._http.post(
                    IMPORT_PATH,
                    data={"action": "add", "key": self._api_key, "params": encoded},
                    follow_redirects=False,
                )
            except httpx.TimeoutException as error:
                raise GetCourseUnavailable("import: timed out") from error
            except httpx.HTTPError as error:
                raise GetCourseUnavailable(f"import: {type(error).__name__}") from error
            check_http_status("import", response)
            user_id, status = _user_of(response.content)
        if user_id != gc_user_id:
            raise GetCourseUserMismatch(
                f"import for {mask_email(email)} answered GetCourse user {user_id}"
                f"{' (created by it)' if status == 'added' else ''}, not the linked {gc_user_id}"
            )
        log.info(
            "getcourse fields %s written for user %s (%s)",
            ", ".join(sorted(fields)),
            gc_user_id,
            mask_email(email),
        )


def _user_of(body: bytes) -> tuple[str, str]:
    """``result.user_id`` and ``result.user_status`` of a successful import, or the typed
    failure of the answer."""
    if not body.strip():
        # Seen on plans without the import API: HTTP 200, nothing written.
        raise GetCourseConfigError(
            "the import API answered with an empty body: the school's plan may not include it"
        )
    try:
        answer = json.loads(body)
    except ValueError as error:
        raise GetCourseBadResponse(f"import: unreadable answer ({describe_body(body)})") from error
    if not isinstance(answer, dict):
        raise GetCourseBadResponse("import: the answer is not an object")
    if not _flag(answer.get("success")):
        message = _text(answer.get("error_message")) or _text(answer.get("error"))
        if FORBIDDEN_MARK in message.lower():
            raise GetCourseConfigError(
                "the import API refused the key (Действие запрещено): give it import rights"
            )
        raise GetCourseApiError(f"import refused: {message[:200] or 'no reason given'}")
    result = answer.get("result")
    if not isinstance(result, dict):
        raise GetCourseBadResponse("import: the answer has no result")
    if _flag(result.get("error")) or not _flag(result.get("success")):
        message = _text(result.get("error_message"))
        raise GetCourseFieldRejected(f"import refused the fields: {message[:200] or 'no reason'}")
    user_id = _text(result.get("user_id"))
    if not user_id:
        raise GetCourseBadResponse("import: the result names no user_id")
    return user_id, _text(result.get("user_status"))


def _flag(value: Any) -> bool:
    """GetCourse sends flags as ``true``, ``"true"`` or ``1``."""
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1"}
    return value is True or value == 1


def _text(value: Any) -> str:
    if value is None or value is False:
        return ""
    return str(value).strip()

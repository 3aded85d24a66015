"""GetCourse Tech API (``/pl/api/v1``): the single-user lookup by email, which costs none of
the school's export budget (``docs/getcourse-api.md``, "Tech API").

Auth is ``Authorization: Bearer <developerKey>_<schoolKey>``; the answer is the envelope
``{status, message, code, errors, data}`` where ``data`` is one user or a list of them.
404 "Объект не найден" (that JSON envelope) means no such user; 403 "Нет доступа" means the keys
are wrong. A 404 with any other body (an HTML page) means the Tech API is not there for this
school or domain: a configuration problem, never "not found" (reference §9)."""

from __future__ import annotations

import logging
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from services.email import mask_email, same_email
from services.errors import (
    GetCourseApiError,
    GetCourseBadResponse,
    GetCourseConfigError,
    GetCourseUnavailable,
)
from services.health import GETCOURSE, CallTracker
from services.models import GetCourseUser
from services.notifications import Notifier, NullNotifier, OperatorEvent, OperatorNotice

log = logging.getLogger(__name__)

GET_FIELDS_PATH = "/pl/api/v1/user/get-fields"


class _TechEnvelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: bool
    message: str | None = None
    code: int | None = None
    data: Any = None


class _TechUser(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    id: str
    email: str | None = None
    status: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    created_at: str | None = None
    deleted: bool | int | None = None


class GetCourseTechClient:
    """Implements ``UserDirectory`` over the Tech API."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        token: str,
        notifier: Notifier | None = None,
        calls: CallTracker | None = None,
    ) -> None:
        self._http = http
        self._token = token
        self._notifier = notifier or NullNotifier()
        self._calls = calls or CallTracker()
        self._misconfigured_told = False

    async def find_user_by_email(self, email: str) -> GetCourseUser | None:
        with self._calls.track(GETCOURSE, "tech_find_user"):
            try:
                response = await self._http.get(
                    GET_FIELDS_PATH,
                    params={"email": email},
                    headers={"Authorization": f"Bearer {self._token}"},
                    follow_redirects=False,
                )
            except httpx.TimeoutException as error:
                raise GetCourseUnavailable("tech get-fields: timed out") from error
            except httpx.HTTPError as error:
                raise GetCourseUnavailable(f"tech get-fields: {type(error).__name__}") from error
            if response.status_code in (401, 403):
                raise self._misconfigured(
                    "GetCourse Tech API refused the keys (403): check GETCOURSE_TECH_API_KEY"
                )
            if response.status_code == 404 and not _is_not_found_answer(response.content):
                # Not GetCourse's "no such user" but a page: the Tech API is not enabled for
                # the school, or the domain does not serve /pl/api/v1.
                raise self._misconfigured(
                    "GetCourse Tech API answered a 404 page instead of its JSON: check that the "
                    "Tech API is enabled and GETCOURSE_BASE_URL serves /pl/api/v1"
                )
            if response.status_code == 429 or response.status_code >= 500:
                raise GetCourseUnavailable(f"tech get-fields: HTTP {response.status_code}")
            if response.status_code not in (200, 404):
                raise GetCourseBadResponse(f"tech get-fields: HTTP {response.status_code}")
            user = _user_from(response.content, email)
        self._misconfigured_told = False  # answered as the Tech API does: tell again next time
        if user is None:
            log.info("getcourse tech api: %s not found", mask_email(email))
        return user

    def _misconfigured(self, message: str) -> GetCourseConfigError:
        """The error to raise; operators hear of it once until the Tech API answers properly
        again, however many lookups run into it meanwhile."""
        error = GetCourseConfigError(message)
        if not self._misconfigured_told:
            self._misconfigured_told = True
            log.error("%s", message)
            self._notifier.notify(
                OperatorNotice(OperatorEvent.GETCOURSE_MISCONFIGURED, {"error": message})
            )
        return error


def _is_not_found_answer(body: bytes) -> bool:
    """GetCourse's own "no such object": ``{"status": false, "code": 404, ...}``."""
    try:
        envelope = _TechEnvelope.model_validate_json(body)
    except ValidationError:
        return False
    return not envelope.status and envelope.code == 404


def _user_from(body: bytes, email: str) -> GetCourseUser | None:
    try:
        envelope = _TechEnvelope.model_validate_json(body)
    except ValidationError as error:
        raise GetCourseBadResponse("tech get-fields: unreadable answer") from error
    if not envelope.status:
        if envelope.code == 404:
            return None
        raise GetCourseApiError(f"GetCourse Tech API error {envelope.code}")
    data = envelope.data if isinstance(envelope.data, list) else [envelope.data]
    try:
        users = [_TechUser.model_validate(item) for item in data if item]
    except ValidationError as error:
        raise GetCourseBadResponse("tech get-fields: user of an unexpected shape") from error
    for user in users:
        if user.deleted or (user.email and not same_email(user.email, email)):
            continue
        custom = {"Создан": user.created_at} if user.created_at else {}
        return GetCourseUser(
            id=user.id,
            email=email,
            first_name=user.first_name or "",
            last_name=user.last_name or "",
            phone=user.phone or "",
            status=user.status,
            custom_fields=custom,
        )
    return None

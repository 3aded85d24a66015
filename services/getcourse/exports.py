"""GetCourse legacy export API: find a user by email.

The flow follows ``docs/getcourse-api.md``: start a users export with the ``email`` filter,
poll it while it answers 909 ("file not created yet"), take ``items`` as the ready signal, zip
each row with the header and re-check the email ourselves. Errors arrive as HTTP 200 with
``success: false`` and are mapped to typed errors; redirects are never followed (the key would
leak); every request is paid for in the persisted export budget first."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import ijson
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from services.email import mask_email, same_email
from services.errors import (
    GetCourseApiError,
    GetCourseBadResponse,
    GetCourseBusy,
    GetCourseConfigError,
    GetCourseError,
    GetCourseExportTimeout,
    GetCourseFilterRefused,
    GetCourseRateLimited,
    GetCourseUnavailable,
)
from services.getcourse.budget import WINDOW_SECONDS, ExportBudget
from services.health import GETCOURSE, CallTracker
from services.models import GetCourseUser
from services.notifications import Notifier, NullNotifier, OperatorEvent, OperatorNotice
from services.redaction import error_text
from services.storage.getcourse_quirks import EMAIL_FILTER, QuirkRepository

log = logging.getLogger(__name__)

# How old a started export may be for a later lookup of the same email to collect it.
RESUMABLE_EXPORT_AGE = 60 * 60.0
# How many recent export build times the first poll is timed by.
BUILD_TIMES_KEPT = 5
# Bytes of a streamed export answer parsed at a time: a slice holds the event loop about 0.5 ms.
PARSE_SLICE_BYTES = 8 * 1024
# Seconds an export's reader rests per second it spent parsing and storing rows: reading takes at
# most half of the process's time (a sync has nobody waiting; the people the bot answers meanwhile
# do: directory hits during a 1M sync went from p95 ~100 ms to 24-38 ms, the sync taking about
# twice as long; bench/directory.py).
EXPORT_REST_PER_BUSY_SECOND = 1.0
# Users per batch handed to an export's sink. A sync writes each batch in one statement on the
# connection every lookup shares, so a person's lookup may wait behind one: a small batch keeps
# that wait to a millisecond or two (batches of 1,000 kept hits during a 1M sync at p95 130 ms).
EXPORT_BATCH_ROWS = 100
# Answers up to this size are also kept whole, to be read as an envelope if they hold no rows.
ENVELOPE_MAX_BYTES = 64 * 1024
NOT_READY_CODES = frozenset({909, 910})  # 910 appears in one client only; harmless to accept
CONFIG_ERROR_CODES = {
    901: "GetCourse rejected the API key (901): check GETCOURSE_API_KEY and the account domain",
    904: "GetCourse says the API key is missing (904)",
    908: "GetCourse refused the export filter (908)",
    914: "GetCourse refused the status filter (914)",
    917: "the GetCourse API is not available on this school's plan (917)",
}
EMAIL_HEADERS = frozenset({"email", "e-mail", "эл. почта"})
NAMED_COLUMNS = {
    "id": "id",
    "имя": "first_name",
    "фамилия": "last_name",
    "телефон": "phone",
    "статус": "status",
}


class _Envelope(BaseModel):
    """Every legacy answer: ``success`` plus either ``info`` or an error code and message."""

    model_config = ConfigDict(extra="ignore")

    success: bool
    error_code: int | None = None
    error_message: str | None = None
    info: Any = None


class _ExportStarted(BaseModel):
    export_id: int


class GetCourseGroup(BaseModel):
    """One element of the ``/pl/api/account/groups`` answer."""

    model_config = ConfigDict(extra="ignore")

    id: int
    name: str


_GROUPS = TypeAdapter(list[GetCourseGroup])


class _ExportData(BaseModel):
    fields: list[str]
    items: list[list[str | int | float | None]]


@dataclass(frozen=True)
class PollSchedule:
    """How patiently an export is polled: every poll costs one request of the budget."""

    first_delay: float = 10.0
    max_interval: float = 30.0
    growth: float = 1.5
    give_up_after: float = 240.0


class GetCourseClient:
    """Looks users up by email; one export at a time for the account (GetCourse allows no more).

    Everything one lookup does (waiting for the account's export slot, retrying a start that
    GetCourse refused with 905, polling) fits in ``PollSchedule.give_up_after``; past that the
    answer is "try later"."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        api_key: str,
        budget: ExportBudget,
        schedule: PollSchedule | None = None,
        notifier: Notifier | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        calls: CallTracker | None = None,
        quirks: QuirkRepository | None = None,
    ) -> None:
        self._http = http
        self._api_key = api_key
        self._budget = budget
        self._exports = budget.exports
        self._schedule = schedule or PollSchedule()
        self._notifier = notifier or NullNotifier()
        self._sleep = sleep
        self._clock = clock
        self._export_lock = asyncio.Lock()
        self._calls = calls or CallTracker()
        # Seconds from start to ready of recent exports: the first poll waits for the
        # quickest of them, so an export of the usual kind costs a start and one poll.
        self._build_times: deque[float] = deque(maxlen=BUILD_TIMES_KEPT)
        self.requests_sent = 0  # export-API requests since start, for pacing by the caller
        self._quirks = quirks
        # What the ``email`` filter does here: "works", or a quirk learned (see getcourse_quirks).
        self._email_filter: str | None = None

    async def email_filter_works(self) -> bool:
        """False once this school's GetCourse was seen not to filter users exports by email:
        single lookups are then answered by a window export instead."""
        if self._email_filter is None:
            known = None if self._quirks is None else await self._quirks.get(EMAIL_FILTER)
            self._email_filter = known or "works"
        return self._email_filter == "works"

    async def _learn_email_filter(self, quirk: str) -> None:
        log.warning(
            "getcourse: the users export does not filter by email here (%s); single lookups "
            "use a window export from now on",
            quirk,
        )
        self._email_filter = quirk
        if self._quirks is not None:
            await self._quirks.learned(EMAIL_FILTER, quirk, self._clock())

    async def find_user_by_email(self, email: str) -> GetCourseUser | None:
        """Raises ``GetCourseFilterRefused`` when GetCourse does not know the ``email`` filter
        (learned once, then raised without a request)."""
        if not await self.email_filter_works():
            raise GetCourseFilterRefused(
                "GetCourse does not filter users exports by email", 908, ("email",)
            )
        deadline = time.monotonic() + self._schedule.give_up_after
        try:
            async with asyncio.timeout(self._schedule.give_up_after):
                await self._export_lock.acquire()
        except TimeoutError:
            raise GetCourseBusy("too many lookups waiting for the export slot") from None
        try:
            async with self._guarded("find_user"):
                data = await self._export_rows(email, deadline)
        finally:
            self._export_lock.release()
        if data is None:
            return None
        everyone = _rows_to_users(data)
        users = [user for user in everyone if same_email(user.email, email)]
        if len(users) < len(everyone):
            await self._learn_email_filter("ignored")  # it gave us other people
        if len(users) > 1:
            log.warning(
                "getcourse export for %s: %d users share the email; taking the first",
                mask_email(email),
                len(users),
            )
        return users[0] if users else None

    async def export_slot_free(self) -> None:
        """Returns once no export of ours is going: a lookup that waited for the slot looks at
        the directory again before paying for an export (the one before may have answered)."""
        async with self._export_lock:
            return

    async def export_users(
        self,
        filters: dict[str, str],
        *,
        resume_export_id: int | None,
        on_started: Callable[[int], Awaitable[None]],
        sink: Callable[[list[GetCourseUser]], Awaitable[None]],
        batch_size: int = EXPORT_BATCH_ROWS,
    ) -> int:
        """One users export with ``filters`` (a directory sync window, or the recent
        registrations for coalesced lookups), read as it streams in
        and handed to ``sink`` in batches; returns how many users it held.

        Waits for the account's export slot as long as it takes (a sync has no person waiting)
        and holds it for this one export only: lookups queued meanwhile go first after it.
        ``resume_export_id`` collects an export started before a restart; ``on_started`` gets
        the ID of a new one before it is polled, so the caller can persist it."""
        async with self._export_lock, self._guarded("export_users"):
            deadline = time.monotonic() + self._schedule.give_up_after
            export_id = resume_export_id
            started_at: float | None = None
            if export_id is None:
                export_id = await self._start_export(filters, deadline)
                started_at = time.monotonic()
                await on_started(export_id)
            log.info("getcourse export %s collecting (%s)", export_id, ",".join(filters))
            return await self._stream_export(export_id, deadline, sink, batch_size, started_at)

    @contextlib.asynccontextmanager
    async def _guarded(self, operation: str) -> AsyncIterator[None]:
        try:
            with self._calls.track(GETCOURSE, operation):
                yield
        except GetCourseRateLimited:
            # The school's whole budget is gone: every export call until the window clears
            # would extend the outage for all its integrations.
            await self._budget.pause(WINDOW_SECONDS, "GetCourse answered 903")
            self._notifier.notify(OperatorNotice(OperatorEvent.GETCOURSE_BUDGET_EXHAUSTED))
            raise
        except GetCourseConfigError as error:
            self._notifier.notify(
                OperatorNotice(OperatorEvent.GETCOURSE_MISCONFIGURED, {"error": error_text(error)})
            )
            raise

    async def list_groups(self) -> list[GetCourseGroup]:
        """The account's groups: the cheapest call that proves the key (one budget request,
        answered at once, no export job)."""
        with self._calls.track(GETCOURSE, "groups"):
            envelope = await self._call("groups", "/pl/api/account/groups", {})
            if not envelope.success:
                raise _error_from(envelope)
            try:
                return _GROUPS.validate_python(envelope.info)
            except ValidationError as error:
                raise GetCourseBadResponse("groups answer is not a list of groups") from error

    async def _export_rows(self, email: str, deadline: float) -> _ExportData | None:
        """Collect the export of this email we started before a restart, or start one."""
        saved = await self._exports.open_export_for(
            email, since=self._clock() - RESUMABLE_EXPORT_AGE
        )
        if saved is not None:
            log.info("getcourse export %s resumed for %s", saved.export_id, mask_email(email))
            export_id = saved.export_id
            started_at: float | None = None
        else:
            try:
                export_id = await self._start_export({"email": email}, deadline)
            except GetCourseFilterRefused:
                await self._learn_email_filter("unknown")
                raise
            started_at = time.monotonic()
            await self._exports.started(export_id, email, self._clock())
            log.info("getcourse export %s started for %s", export_id, mask_email(email))
        try:
            data = await self._collect_export(export_id, deadline, started_at)
        except GetCourseExportTimeout:
            raise  # left open: the next lookup of this email collects it
        except GetCourseError:
            await self._exports.finished(export_id, "failed", self._clock())
            raise
        await self._exports.finished(export_id, "found" if data else "empty", self._clock())
        return data

    async def _start_export(self, filters: dict[str, str], deadline: float) -> int:
        delay = self._schedule.first_delay
        while True:
            envelope = await self._call("start", "/pl/api/account/users", filters)
            if envelope.success:
                break
            error = _error_from(envelope)
            if _filter_refused(envelope, filters):
                raise GetCourseFilterRefused(str(error), envelope.error_code or 0, tuple(filters))
            # 905: another export of the school is building (maybe another integration's);
            # it finishes in seconds to a minute, so wait while the person's patience lasts.
            if not isinstance(error, GetCourseBusy) or time.monotonic() + delay > deadline:
                raise error
            log.info("getcourse busy (905); starting again in %.0fs", delay)
            await self._sleep(delay)
            delay = min(delay * self._schedule.growth, self._schedule.max_interval)
        try:
            export_id = _ExportStarted.model_validate(envelope.info).export_id
        except ValidationError as error:
            raise GetCourseBadResponse("export start answer has no export_id") from error
        return export_id

    async def _collect_export(
        self, export_id: int, deadline: float, started_at: float | None
    ) -> _ExportData | None:
        """Poll until ready; ``None`` when GetCourse says nothing matched."""
        async with contextlib.aclosing(self._poll_times(export_id, deadline)) as polls:
            async for polled_at in polls:
                envelope = await self._call("poll", f"/pl/api/account/exports/{export_id}", {})
                info = envelope.info
                if envelope.success and isinstance(info, dict) and "items" in info:
                    self._built(started_at, polled_at)
                    try:
                        return _ExportData.model_validate(info)
                    except ValidationError as error:
                        raise GetCourseBadResponse("export rows of an unexpected shape") from error
                if _judge_unready(envelope) == "empty":
                    self._built(started_at, polled_at)
                    return None
        raise AssertionError("the poll schedule ends by raising")  # for the type checker

    async def _stream_export(
        self,
        export_id: int,
        deadline: float,
        sink: Callable[[list[GetCourseUser]], Awaitable[None]],
        batch_size: int,
        started_at: float | None,
    ) -> int:
        async with contextlib.aclosing(self._poll_times(export_id, deadline)) as polls:
            async for polled_at in polls:
                await self._spend("poll")
                try:
                    async with self._http.stream(
                        "GET",
                        f"/pl/api/account/exports/{export_id}",
                        params={"key": self._api_key},
                        follow_redirects=False,
                    ) as response:
                        if response.status_code != 200:
                            await response.aread()
                            _check_status("poll", response)
                        rows = await _stream_rows(response, sink, batch_size)
                except httpx.TimeoutException as error:
                    raise GetCourseUnavailable("poll: timed out") from error
                except httpx.HTTPError as error:
                    raise GetCourseUnavailable(f"poll: {type(error).__name__}") from error
                if rows is not None:
                    self._built(started_at, polled_at)
                    return rows
        raise AssertionError("the poll schedule ends by raising")  # for the type checker

    async def _poll_times(self, export_id: int, deadline: float) -> AsyncGenerator[float, None]:
        """Wait before each poll of an export and yield when to poll; past ``deadline`` the
        export is given up on.

        The first poll waits for the learned build time (``first_delay`` until one is known);
        after a poll that finds the export unready the waits start again at ``first_delay`` and
        grow. Restarting small keeps a poll that came a little early from costing a person the
        whole grown interval, and a short first build is seen soon enough for the learned time
        to be close to the real one (a 30 s build: polls at 10, 20 and 35 s, not 10, 25 and
        47.5 s), since every later export of the kind is first polled at that time."""
        schedule = self._schedule
        delay = self._first_poll_delay()
        step = schedule.first_delay
        while True:
            if time.monotonic() + delay > deadline:
                raise GetCourseExportTimeout(
                    f"export {export_id} not ready after {schedule.give_up_after:.0f}s"
                )
            await self._sleep(delay)
            yield time.monotonic()
            delay, step = step, min(step * schedule.growth, schedule.max_interval)

    def _first_poll_delay(self) -> float:
        learned = min(self._build_times, default=0.0)
        return max(self._schedule.first_delay, min(learned, self._schedule.give_up_after / 2))

    def _built(self, started_at: float | None, polled_at: float) -> None:
        """Remember how long an export we started took to build, up to the poll that found it
        ready (reading its rows is not building; a resumed export tells nothing)."""
        if started_at is not None:
            self._build_times.append(polled_at - started_at)

    async def _spend(self, kind: str) -> None:
        await self._budget.spend(kind)
        self.requests_sent += 1

    async def _call(self, kind: str, path: str, params: dict[str, str]) -> _Envelope:
        await self._spend(kind)
        try:
            # Never follow, whatever the client was built with: the query carries the key.
            response = await self._http.get(
                path, params={"key": self._api_key, **params}, follow_redirects=False
            )
        except httpx.TimeoutException as error:
            raise GetCourseUnavailable(f"{kind}: timed out") from error
        except httpx.HTTPError as error:
            # The exception text may carry the URL, and with it the key: name only its type.
            raise GetCourseUnavailable(f"{kind}: {type(error).__name__}") from error
        _check_status(kind, response)
        try:
            return _Envelope.model_validate_json(response.content)
        except ValidationError as error:
            raise GetCourseBadResponse(
                f"{kind}: unreadable answer ({_describe_body(response.content)})"
            ) from error


def _check_status(kind: str, response: httpx.Response) -> None:
    """Raise for any answer but HTTP 200 (GetCourse's errors come inside a 200)."""
    if response.is_redirect:
        raise GetCourseConfigError(_redirect_advice(response))
    if response.status_code == 404 and "wrong subdomain" in response.text.lower():
        raise GetCourseConfigError("GetCourse knows no such account: check GETCOURSE_ACCOUNT")
    if response.status_code >= 500:
        raise GetCourseUnavailable(f"{kind}: HTTP {response.status_code}")
    if response.status_code != 200:
        raise GetCourseBadResponse(f"{kind}: HTTP {response.status_code}")


def _judge_unready(envelope: _Envelope) -> str:
    """A poll answer without rows: "pending" (909), "empty" (nothing matched), or the error."""
    if envelope.success:
        raise GetCourseBadResponse("export answered success without items")
    message = envelope.error_message or ""
    if "другой фильтр" in message:
        return "empty"  # "Файл не создан, попробуйте другой фильтр": permanent, no match
    not_ready = "еще не создан" in message.replace("ё", "е")
    if envelope.error_code not in NOT_READY_CODES and not not_ready:
        raise _error_from(envelope)
    return "pending"


async def _stream_rows(
    response: httpx.Response,
    sink: Callable[[list[GetCourseUser]], Awaitable[None]],
    batch_size: int,
) -> int | None:
    """Read a poll answer as it arrives: rows go to ``sink`` in batches and are not kept, so
    a whole-account export never sits in memory. ``None`` while the export is building.

    The bytes are parsed a slice at a time by ijson's C backend, the loop is given back between
    slices (a slice costs about half a millisecond), and after each batch the reader rests as
    long as the batch kept it busy: a sync streaming a million rows must not hold up the people
    the bot is answering meanwhile."""
    parser = _ExportAnswerParser()
    batch: list[GetCourseUser] = []
    count = 0
    busy = 0.0  # seconds spent parsing and storing since the last rest
    try:
        async for chunk in response.aiter_bytes():
            for start in range(0, len(chunk), PARSE_SLICE_BYTES):
                began = time.perf_counter()
                users = parser.feed(chunk[start : start + PARSE_SLICE_BYTES])
                busy += time.perf_counter() - began
                count += len(users)
                batch += users
                while len(batch) >= batch_size:
                    began = time.perf_counter()
                    await sink(batch[:batch_size])
                    busy += time.perf_counter() - began
                    del batch[:batch_size]
                    await asyncio.sleep(busy * EXPORT_REST_PER_BUSY_SECOND)
                    busy = 0.0
                await asyncio.sleep(0)
        users = parser.close()
    except ijson.JSONError as error:
        raise GetCourseBadResponse("poll: unreadable export answer") from error
    if parser.rows_seen:
        count += len(users)
        batch += users
        for start in range(0, len(batch), batch_size):
            await sink(batch[start : start + batch_size])
        return count
    envelope = parser.envelope()
    if isinstance(envelope.info, dict) and "items" in envelope.info:
        return 0  # an export that matched nobody
    return None if _judge_unready(envelope) == "pending" else 0


class _ExportAnswerParser:
    """A poll answer, fed in slices: ``info.items`` rows are parsed in bulk (ijson's C backend
    builds each row; no Python runs per value) and turned into users by the header, which may
    come before or after them. An answer without rows (909, an error, an empty export) is
    small and is read whole as an envelope at the end."""

    def __init__(self) -> None:
        self._rows = ijson.sendable_list()
        self._row_parser = ijson.items_coro(self._rows, "info.items.item")
        self._fields = ijson.sendable_list()
        self._fields_parser = ijson.items_coro(self._fields, "info.fields")
        self._reader: _RowReader | None = None
        self._early_rows: list[object] = []  # rows before the header (never seen so far)
        self._head: bytearray | None = bytearray()  # the answer while it is envelope-sized
        self.rows_seen = 0

    def feed(self, data: bytes) -> list[GetCourseUser]:
        if self._head is not None:
            self._head += data
            if len(self._head) > ENVELOPE_MAX_BYTES:
                self._head = None
        self._row_parser.send(data)
        if self._reader is None:
            self._fields_parser.send(data)
            self._take_header()
        return self._users()

    def close(self) -> list[GetCourseUser]:
        """The users of the last rows; raises ``ijson.JSONError`` for a cut-off answer."""
        self._row_parser.close()
        if self._reader is None:
            self._fields_parser.close()
            self._take_header()
        self._reader = self._reader or _RowReader([])
        return self._users()

    def envelope(self) -> _Envelope:
        """The whole answer as an envelope (for an answer that held no rows)."""
        if self._head is None:
            raise GetCourseBadResponse("poll: a large export answer without rows")
        try:
            return _Envelope.model_validate_json(self._head)
        except ValidationError as error:
            raise GetCourseBadResponse("poll: unreadable export answer") from error

    def _take_header(self) -> None:
        if self._fields:
            fields = self._fields[0]
            self._reader = _RowReader(
                [str(title) for title in fields] if isinstance(fields, list) else []
            )

    def _users(self) -> list[GetCourseUser]:
        rows: list[object] = list(self._rows)
        del self._rows[:]
        self.rows_seen += len(rows)
        if self._reader is None:
            self._early_rows += rows
            return []
        if self._early_rows:
            rows = self._early_rows + rows
            self._early_rows = []
        reader = self._reader
        return [
            user for row in rows if isinstance(row, list) and (user := reader.user(row)) is not None
        ]


def _filter_refused(envelope: _Envelope, filters: dict[str, str]) -> bool:
    """914 (a status GetCourse does not take), or 908 for an ``email`` filter alone: GetCourse
    ignores a filter it does not know, so alone it leaves "no filter given"."""
    return envelope.error_code == 914 or (envelope.error_code == 908 and set(filters) == {"email"})


def _error_from(envelope: _Envelope) -> GetCourseError:
    code = envelope.error_code
    if code == 903:
        return GetCourseRateLimited("GetCourse export budget exhausted (903)")
    if code == 905:
        return GetCourseBusy("another export is running for this school (905)")
    if code in CONFIG_ERROR_CODES:
        return GetCourseConfigError(CONFIG_ERROR_CODES[code])
    return GetCourseApiError(f"GetCourse error {code}: {(envelope.error_message or '')[:200]}")


def _redirect_advice(response: httpx.Response) -> str:
    location = urlsplit(response.headers.get("location", ""))
    if location.scheme and location.netloc:
        # Only scheme and host: the rest of the location may repeat our query, key included.
        return (
            f"GetCourse redirects to {location.scheme}://{location.netloc}: set "
            f"GETCOURSE_BASE_URL={location.scheme}://{location.netloc}"
        )
    return f"GetCourse answered HTTP {response.status_code} redirect: check GETCOURSE_BASE_URL"


def _describe_body(body: bytes) -> str:
    if not body.strip():
        return "empty body"
    if body.lstrip().startswith(b"<"):
        return "HTML"
    return f"{len(body)} bytes, not the expected JSON"


def _rows_to_users(data: _ExportData) -> list[GetCourseUser]:
    reader = _RowReader(data.fields)
    return [user for row in data.items if (user := reader.user(row)) is not None]


class _RowReader:
    """Turns export rows into users by the header (columns vary per account)."""

    def __init__(self, fields: Sequence[str]) -> None:
        self._titles = [title.strip() for title in fields]
        self._keys = [title.lower() for title in self._titles]
        # With an email column present but empty (a user without one), an "@" elsewhere belongs
        # to someone else ("Email партнера"): the fallback is only for a header naming no email.
        self._has_email_column = any(key in EMAIL_HEADERS for key in self._keys)

    def user(self, row: Sequence[object]) -> GetCourseUser | None:
        keys = self._keys
        # Padded so a short row still has a cell per header, and read by position, so a
        # repeated title cannot shift the columns after it.
        values = ["" if value is None else str(value).strip() for value in row]
        values += [""] * (len(keys) - len(values))
        email = ""
        named: dict[str, str] = {}
        other: dict[str, str] = {}
        for title, key, value in zip(self._titles, keys, values, strict=False):
            if key in EMAIL_HEADERS:
                email = email or value
            elif key in NAMED_COLUMNS:
                named.setdefault(NAMED_COLUMNS[key], value)
            elif value:
                other.setdefault(title, value)
        if not email and not self._has_email_column:
            email = next((value for value in values if "@" in value), "")
        if not named.get("id") or not email:
            return None
        return GetCourseUser(
            id=named["id"],
            email=email.lower(),
            first_name=named.get("first_name", ""),
            last_name=named.get("last_name", ""),
            phone=named.get("phone", ""),
            status=named.get("status") or None,
            custom_fields=other,
        )

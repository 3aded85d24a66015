"""Both directions (issue 13): GetCourse learns the Telegram and Salebot IDs of a link, and
GetCourse events move the person's Salebot funnel.

- ``LinkFollowUps.link_changed`` runs inside the transaction that stores, replaces or removes a
  link: it queues the GetCourse field write (or the blanking of the old user's fields), the
  linked-message callback, and the delivery of events that waited for this person's link.
- ``GetCourseEvents.receive`` checks and stores an event a GetCourse process reported; one that
  names a user's ID and email teaches the local directory a user it did not know (a registration
  announced this way is a directory hit, at no export cost), and people waiting for that email
  are answered at once.
- ``BridgeWorker`` delivers the field writes and the callbacks; the outbox worker runs it right
  after the Salebot writes, so follow-ups go as soon as a link's variables have landed."""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

import aiosqlite

from services.backoff import RetryPolicy
from services.email import mask_email, normalize_email
from services.errors import (
    GetCourseBadResponse,
    GetCourseBudgetExhausted,
    GetCourseConfigError,
    GetCourseError,
    GetCourseFieldRejected,
    GetCourseUserMismatch,
    InvalidEmail,
    SalebotCallbackUncertain,
    SalebotClientNotFound,
    SalebotError,
    SalebotRejected,
    ServiceError,
)
from services.getcourse.directory_sync import UsersArrived
from services.getcourse.import_api import GetCourseImportClient
from services.models import GetCourseUser, Link
from services.notifications import Notifier, NullNotifier, OperatorEvent, OperatorNotice
from services.salebot.client import SalebotClient
from services.storage.bridge import (
    CallbackRepository,
    EventRepository,
    FieldWrite,
    FieldWriteRepository,
    SalebotCallback,
)
from services.storage.database import Database, fetch_one
from services.storage.directory import DirectoryRepository, Learning

log = logging.getLogger(__name__)

DAY = 24 * 3600.0
EVENT_NAME = re.compile(r"[a-z0-9_]{1,40}")
# Salebot variable names start with a letter and hold letters, digits and "_" (Latin is
# recommended); ours are "gc_" + the parameter's name, so the name itself may start with a digit.
PARAMETER_NAME = re.compile(r"[A-Za-z0-9_]{1,60}")
EVENT_ID = re.compile(r"[\w.:\-]{1,100}")
GC_USER_ID = re.compile(r"\d{1,20}")
MAX_PARAMETERS = 50
MAX_VALUE_LENGTH = 10_000  # Salebot allows 100 000; the body is capped at 64 KB anyway
FIELD_WRITE_NOTICE = "field_write:"
TIDY_EVERY = 60.0  # seconds between expiring old events and finding cut-off callbacks
# Parameters of the call itself, never forwarded as variables.
CONTROL_PARAMETERS = frozenset({"secret", "event", "user_id", "email", "event_id"})
# Parameters the directory also takes for a user it learns of (forwarded as variables too).
PROFILE_PARAMETERS = ("first_name", "last_name", "phone")
# A process variable GetCourse left as typed (a misspelt name): not a value.
PLACEHOLDER = re.compile(r"\{[^{}]*\}")


@dataclass(frozen=True)
class BridgeSettings:
    telegram_id_field: str = "telegram_id"  # GetCourse field titles; "" turns a field off
    salebot_id_field: str = "sb_id"
    event_message: str = "gc_{event}"
    linked_message: str = ""  # "" : no callback once a link has landed
    events_keep_days: float = 30.0

    @property
    def writes_fields(self) -> bool:
        return bool(self.telegram_id_field or self.salebot_id_field)

    def fields(self, telegram_id: int | None, salebot_client_id: int | None) -> dict[str, str]:
        """The additional fields to send; ``None`` IDs blank them."""
        values = {
            self.telegram_id_field: "" if telegram_id is None else str(telegram_id),
            self.salebot_id_field: "" if salebot_client_id is None else str(salebot_client_id),
        }
        return {title: value for title, value in values.items() if title}


# -- the hook in every link change -----------------------------------------------------------


class LinkFollowUps:
    def __init__(self, settings: BridgeSettings, clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._clock = clock

    async def link_changed(
        self,
        tx: aiosqlite.Connection,
        telegram_id: int,
        previous: Link | None,
        link: Link | None,
        now: float,
    ) -> None:
        """Call in the transaction that stored (``link``), replaced or removed (``None``) the
        link of ``telegram_id``; ``previous`` is what it replaced."""
        if _same_user(previous, link):
            return  # the same GetCourse user by the same email: nothing changes for GetCourse
        settings = self._settings
        await FieldWriteRepository.withdraw_setting(tx, telegram_id, now)
        if link is None:
            await CallbackRepository.withdraw(tx, telegram_id, now)
        moved = previous is not None and (link is None or previous.gc_user_id != link.gc_user_id)
        if settings.writes_fields and previous is not None and moved:
            await FieldWriteRepository.enqueue(
                tx, telegram_id, previous.email, previous.gc_user_id, blank=True, now=now
            )
        if link is None:
            return
        if settings.writes_fields:
            await FieldWriteRepository.enqueue(
                tx, telegram_id, link.email, link.gc_user_id, blank=False, now=now
            )
        if settings.linked_message and (previous is None or moved):
            await CallbackRepository.enqueue(tx, telegram_id, settings.linked_message, {}, now)
        since = now - settings.events_keep_days * DAY
        for row in await EventRepository.waiting_for(tx, link.gc_user_id, link.email, since):
            await _queue_event(tx, row, telegram_id, settings, now)

    async def forget(self, tx: aiosqlite.Connection, telegram_id: int, link: Link | None) -> int:
        """For erasing a person (``/forget``, ``/erase``; ``services.privacy.erasure`` calls it in
        its transaction, before the link row goes): their GetCourse fields are blanked, and the rest
        of their rows here deleted; returns how many. The blanking write is kept until it is
        delivered, with no Telegram ID (0), and goes once delivered."""
        now = self._clock()
        await self.link_changed(tx, telegram_id, link, None, now)
        await tx.execute(
            "UPDATE getcourse_field_writes SET telegram_id = 0 "
            "WHERE telegram_id = ? AND blank = 1 AND state = 'pending'",
            (telegram_id,),
        )
        gc_user_id, email = (link.gc_user_id, link.email) if link is not None else ("", "")
        removed = 0
        for sql, parameters in (
            ("DELETE FROM salebot_callbacks WHERE telegram_id = ?", (telegram_id,)),
            ("DELETE FROM getcourse_field_writes WHERE telegram_id = ?", (telegram_id,)),
            (
                "DELETE FROM getcourse_events WHERE telegram_id = ? "
                "OR (gc_user_id != '' AND gc_user_id = ?) OR (email != '' AND email = ?)",
                (telegram_id, gc_user_id, email),
            ),
        ):
            cursor = await tx.execute(sql, parameters)
            removed += max(cursor.rowcount, 0)
        return removed


def _same_user(previous: Link | None, link: Link | None) -> bool:
    if previous is None or link is None:
        return False
    return (previous.gc_user_id, previous.email) == (link.gc_user_id, link.email)


async def _queue_event(
    tx: aiosqlite.Connection,
    row: aiosqlite.Row,
    telegram_id: int,
    settings: BridgeSettings,
    now: float,
) -> None:
    message = settings.event_message.replace("{event}", row["event"])
    await EventRepository.assign(tx, int(row["id"]), telegram_id)
    variables = _json_object(row["variables"])
    await CallbackRepository.enqueue(tx, telegram_id, message, variables, now, int(row["id"]))


def _json_object(text: str) -> dict[str, str]:
    value = json.loads(text)
    return {str(name): str(item) for name, item in value.items()}


# -- receiving events ------------------------------------------------------------------------


class EventForbidden(ServiceError):
    """The endpoint is off, or the request does not carry the secret."""


class EventMalformed(ServiceError):
    """The request is not an event we can take; the message is the one-line reason."""


class EventsThrottled(ServiceError):
    def __init__(self, retry_after: float) -> None:
        super().__init__("too many requests")
        self.retry_after = retry_after


class EventOutcome(StrEnum):
    QUEUED = "queued"  # for a linked person: on its way to Salebot
    WAITING = "waiting"  # nobody is linked to this person yet
    DUPLICATE = "duplicate"  # this event_id came before


@dataclass(frozen=True)
class ReceivedEvent:
    outcome: EventOutcome
    event: str


class GetCourseEvents:
    """Checks and stores an event; raises ``EventsThrottled``, ``EventForbidden`` or
    ``EventMalformed`` and then stores nothing."""

    def __init__(
        self,
        database: Database,
        secret: str | None,
        settings: BridgeSettings,
        on_stored: Callable[[], None],
        *,
        users_announced: UsersArrived | None = None,
        per_minute: int = 600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._database = database
        self._secret = secret
        self._settings = settings
        self._on_stored = on_stored
        # Hears of each user an event taught the directory (or found there), once committed.
        self._users_announced = users_announced
        self._per_minute = per_minute
        self._clock = clock
        self._recent: deque[float] = deque()
        self._listeners: list[Callable[[str], None]] = []

    @property
    def enabled(self) -> bool:
        return bool(self._secret)

    def subscribe(self, listener: Callable[[str], None]) -> None:
        """``listener`` hears each request's outcome: queued, waiting, duplicate, refused."""
        self._listeners.append(listener)

    def refused(self, reason: str) -> None:
        """A request refused before it reached ``receive`` (its body was too large)."""
        log.warning("getcourse event refused: %s", reason)
        self._count("refused")

    async def receive(self, params: Mapping[str, str]) -> ReceivedEvent:
        try:
            self._admit()
            self._check_secret(params.get("secret", ""))
            parsed = _parse(params)
        except (EventForbidden, EventMalformed, EventsThrottled) as error:
            self.refused(str(error))
            raise
        now = self._clock()
        async with self._database.transaction() as tx:
            row_id = await EventRepository.add(
                tx,
                event=parsed.event,
                event_id=parsed.event_id,
                gc_user_id=parsed.gc_user_id,
                email=parsed.email,
                variables=parsed.variables,
                now=now,
            )
            telegram_id = None
            if row_id is not None:
                telegram_id = await _linked_person(tx, parsed.gc_user_id, parsed.email)
                if telegram_id is not None:
                    row = await fetch_one(
                        tx, "SELECT * FROM getcourse_events WHERE id = ?", (row_id,)
                    )
                    assert row is not None
                    await _queue_event(tx, row, telegram_id, self._settings, now)
            learning = None
            if parsed.user is not None:  # it names both the ID and the email
                learning = await DirectoryRepository.learn(tx, parsed.user, now)
        if row_id is None:
            outcome = EventOutcome.DUPLICATE
        elif telegram_id is None:
            outcome = EventOutcome.WAITING
        else:
            outcome = EventOutcome.QUEUED
            self._on_stored()
        log.info(
            "getcourse event %s (event_id %s) for user %s %s: %s",
            parsed.event,
            parsed.event_id or "-",
            parsed.gc_user_id or "-",
            mask_email(parsed.email) if parsed.email else "-",
            f"telegram {telegram_id}" if telegram_id is not None else outcome,
        )
        self._count(outcome)
        if learning is not None:
            await self._announce(parsed, learning)
        return ReceivedEvent(outcome, parsed.event)

    async def _announce(self, parsed: _ParsedEvent, learning: Learning) -> None:
        if learning.email_holder is not None:
            log.info(
                "getcourse event %s: %s is user %s in the directory, not %s: directory unchanged",
                parsed.event,
                mask_email(parsed.email),
                learning.email_holder,
                parsed.gc_user_id,
            )
        if learning.user is None or self._users_announced is None:
            return
        try:
            await self._users_announced([learning.user])
        except Exception:  # the event is stored; the queue's own pass answers them instead
            log.exception("answering people waiting for user %s failed", learning.user.id)

    def _admit(self) -> None:
        now = self._clock()
        while self._recent and self._recent[0] <= now - 60:
            self._recent.popleft()
        if len(self._recent) >= self._per_minute:
            raise EventsThrottled(retry_after=max(self._recent[0] + 60 - now, 1.0))
        self._recent.append(now)

    def _check_secret(self, given: str) -> None:
        if not self._secret:
            raise EventForbidden("GetCourse events are off (GETCOURSE_EVENTS_SECRET is unset)")
        if not hmac.compare_digest(given.encode(), self._secret.encode()):
            raise EventForbidden("wrong or missing secret")

    def _count(self, outcome: str) -> None:
        for listener in self._listeners:
            listener(outcome)


@dataclass(frozen=True)
class _ParsedEvent:
    event: str
    event_id: str | None
    gc_user_id: str
    email: str
    variables: dict[str, str]
    user: GetCourseUser | None  # the user it names, when it gives both ID and email


def _parse(params: Mapping[str, str]) -> _ParsedEvent:
    event = params.get("event", "").strip()
    if not EVENT_NAME.fullmatch(event):
        raise EventMalformed("event must be 1-40 characters of a-z, 0-9 and _")
    gc_user_id = params.get("user_id", "").strip()
    if gc_user_id and not GC_USER_ID.fullmatch(gc_user_id):
        raise EventMalformed("user_id must be the GetCourse user ID (digits)")
    # An unencoded "+" in a query string arrives as a space; an address holds no spaces.
    email = params.get("email", "").strip().replace(" ", "+")
    if email:
        try:
            email = normalize_email(email)
        except InvalidEmail:
            raise EventMalformed("email is not an email address") from None
    if not gc_user_id and not email:
        raise EventMalformed("user_id or email is required")
    event_id = params.get("event_id", "").strip() or None
    if event_id is not None and not EVENT_ID.fullmatch(event_id):
        raise EventMalformed("event_id must be 1-100 characters of letters, digits and _ . : -")
    extra = {name: value for name, value in params.items() if name not in CONTROL_PARAMETERS}
    if len(extra) > MAX_PARAMETERS:
        raise EventMalformed(f"at most {MAX_PARAMETERS} further parameters")
    variables = {}
    for name, value in extra.items():
        if not PARAMETER_NAME.fullmatch(name):
            raise EventMalformed("parameter names must be 1-60 characters of A-Z, a-z, 0-9 and _")
        if len(value) > MAX_VALUE_LENGTH:
            raise EventMalformed(f"parameter {name} is longer than {MAX_VALUE_LENGTH} characters")
        variables[f"client.gc_{name}"] = value
    user = None
    if gc_user_id and email:
        first_name, last_name, phone = (_profile_value(params, name) for name in PROFILE_PARAMETERS)
        user = GetCourseUser(gc_user_id, email, first_name, last_name, phone)
    return _ParsedEvent(event, event_id, gc_user_id, email, variables, user)


def _profile_value(params: Mapping[str, str], name: str) -> str:
    value = params.get(name, "").strip()
    return "" if PLACEHOLDER.search(value) else value


async def _linked_person(tx: aiosqlite.Connection, gc_user_id: str, email: str) -> int | None:
    """The Telegram account linked to this GetCourse user (by ID first, then by email)."""
    if gc_user_id:
        row = await fetch_one(
            tx,
            "SELECT telegram_id FROM links WHERE gc_user_id = ? ORDER BY telegram_id",
            (gc_user_id,),
        )
        if row is not None:
            return int(row[0])
    if email:
        row = await fetch_one(
            tx, "SELECT telegram_id FROM links WHERE email = ? ORDER BY telegram_id", (email,)
        )
        if row is not None:
            return int(row[0])
    return None


# -- delivering ------------------------------------------------------------------------------


class BridgeCause(StrEnum):
    UNAVAILABLE = "unavailable"
    BAD_RESPONSE = "bad_response"
    BUDGET = "import_budget"
    FIELD_MISSING = "field_missing"
    MISCONFIGURED = "misconfigured"
    USER_MISMATCH = "user_mismatch"
    CLIENT_NOT_FOUND = "client_not_found"
    REJECTED = "rejected"
    MAY_HAVE_LANDED = "may_have_landed"


class BridgeWorker:
    """Delivers GetCourse field writes and Salebot callbacks that are due; a lane of the
    outbox worker (``deliver_due``, ``next_due_at``)."""

    def __init__(
        self,
        database: Database,
        salebot: SalebotClient,
        importer: GetCourseImportClient,
        settings: BridgeSettings,
        retry: RetryPolicy | None = None,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.time,
        batch_size: int = 50,
    ) -> None:
        self._database = database
        self._salebot = salebot
        self._importer = importer
        self._settings = settings
        self._retry = retry or RetryPolicy()
        self._notifier = notifier or NullNotifier()
        self._clock = clock
        self._batch_size = batch_size
        self._writes = FieldWriteRepository(database)
        self._callbacks = CallbackRepository(database)
        self._events = EventRepository(database)
        self._tidied_at: float | None = None
        self._sending: set[int] = set()  # callbacks this worker is sending right now
        self._listeners: list[Callable[[str], None]] = []

    def subscribe(self, listener: Callable[[str], None]) -> None:
        """``listener`` hears ``delivered`` for each GetCourse event that reached Salebot."""
        self._listeners.append(listener)

    async def next_due_at(self) -> float | None:
        times = [await self._writes.next_due_at(), await self._callbacks.next_due_at()]
        return min((value for value in times if value is not None), default=None)

    async def deliver_due(self) -> int:
        now = self._clock()
        if self._tidied_at is None or now - self._tidied_at >= TIDY_EVERY:
            self._tidied_at = now
            await self._tidy(now)
        delivered = 0
        for write in await self._writes.due(now, self._batch_size):
            delivered += await self._write_fields(write)
        for callback in await self._callbacks.due(self._clock(), self._batch_size):
            delivered += await self._call_back(callback)
        return delivered

    async def _tidy(self, now: float) -> None:
        """Events that waited too long for a link expire; a callback left 'sending' by a stop
        or a crash of this loop may have landed: it becomes 'uncertain', never sent again."""
        await self._events.expire(now - self._settings.events_keep_days * DAY)
        if cut_off := await self._callbacks.interrupted(now, keep=self._sending):
            log.warning("%d salebot callbacks were cut off while sending: not sent again", cut_off)

    # -- GetCourse field writes --------------------------------------------------------------

    async def _write_fields(self, write: FieldWrite) -> int:
        # The import matches users by email and creates one for an email it does not know: a
        # user who changed their email in GetCourse is written under the email the directory
        # now knows for them (the answer's user_id is checked all the same).
        known = await DirectoryRepository(self._database).by_id(write.gc_user_id)
        email = known.email if known is not None and known.email else write.email
        client_id = None
        if not write.blank:
            row = await self._database.fetchone(
                "SELECT salebot_client_id FROM links WHERE telegram_id = ?", (write.telegram_id,)
            )
            client_id = int(row[0]) if row and row[0] is not None else None
        telegram_id = None if write.blank else write.telegram_id
        fields = self._settings.fields(telegram_id, client_id)
        now = self._clock()
        try:
            await self._importer.update_fields(email, write.gc_user_id, fields)
        except GetCourseBudgetExhausted as error:
            async with self._database.transaction() as tx:
                await FieldWriteRepository.postpone(
                    tx, write.id, now + error.retry_after, BridgeCause.BUDGET
                )
            log.warning("getcourse field write %s waits: %s", write.id, error)
            return 0
        except GetCourseError as error:
            await self._field_write_failed(write, fields, error)
            return 0
        async with self._database.transaction() as tx:
            await FieldWriteRepository.settle(tx, write.id, "delivered", fields, now=self._clock())
            # The setup works (again): a later breakage is worth telling once more.
            await tx.execute(
                "DELETE FROM told_operators WHERE key LIKE ? AND key NOT LIKE ?",
                (f"{FIELD_WRITE_NOTICE}%", f"{FIELD_WRITE_NOTICE}{BridgeCause.USER_MISMATCH}%"),
            )
        return 1

    async def _field_write_failed(
        self, write: FieldWrite, fields: dict[str, str], error: GetCourseError
    ) -> None:
        now = self._clock()
        cause = _field_cause(error)
        permanent = isinstance(error, GetCourseConfigError | GetCourseUserMismatch)
        retry_at = None if permanent else now + self._retry.delay(write.attempts + 1)
        async with self._database.transaction() as tx:
            await FieldWriteRepository.settle(
                tx,
                write.id,
                "failed" if permanent else "pending",
                fields,
                now=now,
                cause=cause,
                error=str(error),
                retry_at=retry_at,
            )
            # A missing field or a wrong setup fails every write alike: told once. A user
            # mismatch is about one user: told once per user.
            key = f"{FIELD_WRITE_NOTICE}{cause}"
            if cause is BridgeCause.USER_MISMATCH:
                key += f":{write.gc_user_id}"
            first = permanent and await _first_time(tx, key, now)
        log.warning(
            "getcourse field write %s for user %s failed (%s%s): %s",
            write.id,
            write.gc_user_id,
            cause,
            "" if permanent else ", will retry",
            error,
        )
        if first:
            self._notifier.notify(self._field_notice(write, cause, error))

    def _field_notice(self, write: FieldWrite, cause: str, error: GetCourseError) -> OperatorNotice:
        details = {"gc_user_id": write.gc_user_id, "error": str(error)}
        if isinstance(error, GetCourseFieldRejected):
            titles = [self._settings.telegram_id_field, self._settings.salebot_id_field]
            details["create_fields"] = ", ".join(title for title in titles if title)
            return OperatorNotice(OperatorEvent.GETCOURSE_FIELD_MISSING, details)
        details["cause"] = cause
        return OperatorNotice(OperatorEvent.GETCOURSE_FIELD_WRITE_FAILED, details)

    # -- Salebot callbacks -------------------------------------------------------------------

    async def _call_back(self, callback: SalebotCallback) -> int:
        row = await self._database.fetchone(
            "SELECT salebot_client_id FROM links WHERE telegram_id = ?", (callback.telegram_id,)
        )
        if row is None or row[0] is None:
            return 0  # unlinked meanwhile: the unlink withdrew it
        client_id = int(row[0])
        try:
            if callback.variables and not callback.variables_saved:
                await self._salebot.save_variables(client_id, callback.variables)
                async with self._database.transaction() as tx:
                    await CallbackRepository.mark_variables_saved(tx, callback.id, self._clock())
        except SalebotError as error:
            await self._callback_failed(callback, error, from_state="pending")
            return 0
        async with self._database.transaction() as tx:
            if not await CallbackRepository.mark_sending(tx, callback.id, self._clock()):
                return 0
        self._sending.add(callback.id)
        try:
            await self._salebot.callback(client_id, callback.message)
        except SalebotError as error:
            await self._callback_failed(callback, error, from_state="sending")
            return 0
        finally:
            self._sending.discard(callback.id)
        async with self._database.transaction() as tx:
            await CallbackRepository.settle(tx, callback.id, "delivered", now=self._clock())
        log.info(
            "salebot callback %s (%s) delivered to client %s of telegram %s",
            callback.id,
            callback.message,
            client_id,
            callback.telegram_id,
        )
        if callback.event_row is not None:
            for listener in self._listeners:
                listener("delivered")
        return 1

    async def _callback_failed(
        self, callback: SalebotCallback, error: SalebotError, *, from_state: str
    ) -> None:
        now = self._clock()
        if isinstance(error, SalebotCallbackUncertain):
            state, cause, retry_at = "uncertain", BridgeCause.MAY_HAVE_LANDED, None
        elif isinstance(error, SalebotRejected):
            state, cause, retry_at = "failed", BridgeCause.REJECTED, None
        else:
            state = "pending"
            cause = (
                BridgeCause.CLIENT_NOT_FOUND
                if isinstance(error, SalebotClientNotFound)
                else BridgeCause.UNAVAILABLE
            )
            retry_at = now + self._retry.delay(callback.attempts + 1)
        async with self._database.transaction() as tx:
            await CallbackRepository.settle(
                tx,
                callback.id,
                state,
                now=now,
                cause=cause,
                error=str(error),
                retry_at=retry_at,
                from_state=from_state,
            )
        log.warning(
            "salebot callback %s for telegram %s: %s (%s): %s",
            callback.id,
            callback.telegram_id,
            state,
            cause,
            error,
        )
        if state != "pending":
            self._notifier.notify(
                OperatorNotice(
                    OperatorEvent.CALLBACK_FAILED,
                    {
                        "telegram_id": str(callback.telegram_id),
                        "message": callback.message,
                        "cause": cause,
                    },
                )
            )


def _field_cause(error: GetCourseError) -> BridgeCause:
    if isinstance(error, GetCourseFieldRejected):
        return BridgeCause.FIELD_MISSING
    if isinstance(error, GetCourseUserMismatch):
        return BridgeCause.USER_MISMATCH
    if isinstance(error, GetCourseConfigError):
        return BridgeCause.MISCONFIGURED
    if isinstance(error, GetCourseBadResponse):
        return BridgeCause.BAD_RESPONSE
    return BridgeCause.UNAVAILABLE


async def _first_time(tx: aiosqlite.Connection, key: str, now: float) -> bool:
    """Whether the operators hear of ``key`` now for the first time (then it is noted)."""
    cursor = await tx.execute(
        "INSERT INTO told_operators (key, at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
        (key[:300], now),
    )
    return cursor.rowcount == 1

"""The tables of both directions (issue 13): GetCourse field writes, GetCourse events and the
Salebot callbacks. Pending rows are the outbox of their kind: kept until delivered, retried
with backoff, surviving restarts.

A write that needs the person's Salebot client (a field write that sets the IDs, a callback) is
due only once the link's own Salebot write has landed: the link has a Salebot client and no
Salebot write of the person is still pending."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime

import aiosqlite

from services.storage.database import Database, Repository, fetch_all

# Tables of this module that hold a person's data (Telegram ID, email, GetCourse user ID), for
# erasure and retention. ``LinkFollowUps.forget`` empties them for one person.
PERSONAL_TABLES = ("getcourse_field_writes", "getcourse_events", "salebot_callbacks")

# Only a link whose Salebot variables have landed lets the person's follow-ups go.
_LANDED = (
    "EXISTS (SELECT 1 FROM links l WHERE l.telegram_id = {t}.telegram_id "
    "AND l.salebot_client_id IS NOT NULL{extra}) "
    "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.telegram_id = {t}.telegram_id "
    "AND o.state = 'pending')"
)
FIELD_WRITE_DUE = (
    "w.blank = 1 OR (" + _LANDED.format(t="w", extra=" AND l.gc_user_id = w.gc_user_id") + ")"
)
CALLBACK_DUE = _LANDED.format(t="c", extra="")


@dataclass(frozen=True)
class _Lane:
    """Pending rows of ``table`` (aliased ``alias``) become due at their time once ``ready``
    (an SQL condition on the alias) holds; each attempt at one is recorded the same way."""

    table: str
    alias: str
    ready: str

    async def due(self, database: Database, now: float, limit: int) -> list[aiosqlite.Row]:
        a = self.alias
        return await database.fetchall(
            f"SELECT {a}.* FROM {self.table} {a} WHERE {a}.state = 'pending' "
            f"AND {a}.next_attempt_at <= ? AND ({self.ready}) "
            f"ORDER BY {a}.next_attempt_at, {a}.id LIMIT ?",
            (now, limit),
        )

    async def next_due_at(self, database: Database) -> float | None:
        a = self.alias
        return await database.fetch_time(
            f"SELECT MIN({a}.next_attempt_at) FROM {self.table} {a} "
            f"WHERE {a}.state = 'pending' AND ({self.ready})"
        )

    async def settle(
        self,
        tx: aiosqlite.Connection,
        item_id: int,
        state: str,
        *,
        from_state: str,
        now: float,
        cause: str | None,
        error: str | None,
        retry_at: float | None,
        also: dict[str, object] | None = None,
    ) -> None:
        """Record one attempt at a row still in ``from_state``: it is in ``state`` now, due
        again at ``retry_at`` when given; ``also`` sets more columns of the row."""
        extra = also or {}
        assignments = "".join(f"{column} = ?, " for column in extra)
        await tx.execute(
            f"UPDATE {self.table} SET {assignments}state = ?, attempts = attempts + 1, "
            "cause = ?, last_error = ?, next_attempt_at = COALESCE(?, next_attempt_at), "
            "updated_at = ? WHERE id = ? AND state = ?",
            (*extra.values(), state, cause, error, retry_at, now, item_id, from_state),
        )


_FIELD_WRITES = _Lane("getcourse_field_writes", "w", FIELD_WRITE_DUE)
_CALLBACKS = _Lane("salebot_callbacks", "c", CALLBACK_DUE)
# Pending rows of either kind that wait for something else than their time.
WAITING_STATES = ("pending", "failed", "uncertain")


@dataclass(frozen=True)
class FieldWrite:
    """Writing (or, ``blank``, emptying) our IDs in one GetCourse user's additional fields."""

    id: int
    telegram_id: int
    email: str
    gc_user_id: str
    blank: bool
    fields: dict[str, str]  # what the last attempt sent
    state: str
    attempts: int
    next_attempt_at: float
    cause: str | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SalebotCallback:
    """A ``callback`` for one person, with the variables saved just before it."""

    id: int
    telegram_id: int
    event_row: int | None  # the GetCourse event it delivers; None: the linked message
    message: str
    variables: dict[str, str]
    variables_saved: bool
    state: str
    attempts: int
    cause: str | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class GetCourseEvent:
    """One event a GetCourse process reported, with where its delivery stands."""

    id: int
    event: str
    received_at: datetime
    state: str  # waiting_link, queued, expired
    delivery: str | None  # the callback's state once queued


class FieldWriteRepository(Repository):
    @staticmethod
    async def enqueue(
        tx: aiosqlite.Connection,
        telegram_id: int,
        email: str,
        gc_user_id: str,
        *,
        blank: bool,
        now: float,
    ) -> None:
        """Queue a write; a still-pending write to the same GetCourse user is superseded."""
        await tx.execute(
            "UPDATE getcourse_field_writes SET state = 'superseded', updated_at = ? "
            "WHERE gc_user_id = ? AND state = 'pending'",
            (now, gc_user_id),
        )
        await tx.execute(
            "INSERT INTO getcourse_field_writes (telegram_id, email, gc_user_id, blank, state, "
            "next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)",
            (telegram_id, email, gc_user_id, int(blank), now, now, now),
        )

    @staticmethod
    async def withdraw_setting(tx: aiosqlite.Connection, telegram_id: int, now: float) -> None:
        """The person's writes that set IDs will not be wanted (their link changed)."""
        await tx.execute(
            "UPDATE getcourse_field_writes SET state = 'superseded', updated_at = ? "
            "WHERE telegram_id = ? AND blank = 0 AND state IN ('pending', 'failed')",
            (now, telegram_id),
        )

    async def due(self, now: float, limit: int) -> list[FieldWrite]:
        return [_to_field_write(row) for row in await _FIELD_WRITES.due(self._database, now, limit)]

    async def next_due_at(self) -> float | None:
        return await _FIELD_WRITES.next_due_at(self._database)

    @staticmethod
    async def settle(
        tx: aiosqlite.Connection,
        item_id: int,
        state: str,
        fields: dict[str, str],
        *,
        now: float,
        cause: str | None = None,
        error: str | None = None,
        retry_at: float | None = None,
    ) -> None:
        """Record an attempt: delivered, failed for good, or (``retry_at``) to be tried again."""
        await _FIELD_WRITES.settle(
            tx,
            item_id,
            state,
            from_state="pending",
            now=now,
            cause=cause,
            error=error,
            retry_at=retry_at,
            also={"fields": json.dumps(fields, ensure_ascii=False)},
        )
        if state == "delivered":
            # An erased person's blanking write (no Telegram ID) goes; any other forgets the
            # email, which nothing needs any more.
            await tx.execute(
                "DELETE FROM getcourse_field_writes WHERE id = ? AND blank = 1 AND telegram_id = 0",
                (item_id,),
            )
            await tx.execute(
                "UPDATE getcourse_field_writes SET email = '' WHERE id = ? AND blank = 1",
                (item_id,),
            )

    @staticmethod
    async def postpone(tx: aiosqlite.Connection, item_id: int, until: float, cause: str) -> None:
        """Not attempted (our own ledger refused): due again at ``until``, no attempt counted."""
        await tx.execute(
            "UPDATE getcourse_field_writes SET next_attempt_at = ?, cause = ? "
            "WHERE id = ? AND state = 'pending'",
            (until, cause, item_id),
        )

    async def latest_for(self, telegram_id: int) -> FieldWrite | None:
        row = await self._database.fetchone(
            "SELECT * FROM getcourse_field_writes WHERE telegram_id = ? ORDER BY id DESC LIMIT 1",
            (telegram_id,),
        )
        return _to_field_write(row) if row else None

    async def waiting_by_cause(self) -> dict[tuple[str, str | None], int]:
        rows = await self._database.fetchall(
            "SELECT state, cause, COUNT(*) FROM getcourse_field_writes "
            "WHERE state IN ('pending', 'failed') GROUP BY state, cause"
        )
        return {(row[0], row[1]): int(row[2]) for row in rows}

    @staticmethod
    async def retry_all_now(tx: aiosqlite.Connection, now: float) -> int:
        """Every waiting write due now; a given-up one only while it is its user's latest."""
        cursor = await tx.execute(
            "UPDATE getcourse_field_writes SET state = 'pending', next_attempt_at = ?, "
            "updated_at = ? WHERE state = 'pending' OR (state = 'failed' AND id = "
            "(SELECT MAX(id) FROM getcourse_field_writes AS newer "
            "WHERE newer.gc_user_id = getcourse_field_writes.gc_user_id))",
            (now, now),
        )
        return cursor.rowcount


class CallbackRepository(Repository):
    @staticmethod
    async def enqueue(
        tx: aiosqlite.Connection,
        telegram_id: int,
        message: str,
        variables: dict[str, str],
        now: float,
        event_row: int | None = None,
    ) -> None:
        await tx.execute(
            "INSERT INTO salebot_callbacks (telegram_id, event_row, message, variables, state, "
            "next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)",
            (
                telegram_id,
                event_row,
                message,
                json.dumps(variables, ensure_ascii=False),
                now,
                now,
                now,
            ),
        )

    async def due(self, now: float, limit: int) -> list[SalebotCallback]:
        return [_to_callback(row) for row in await _CALLBACKS.due(self._database, now, limit)]

    async def next_due_at(self) -> float | None:
        return await _CALLBACKS.next_due_at(self._database)

    @staticmethod
    async def mark_variables_saved(tx: aiosqlite.Connection, item_id: int, now: float) -> None:
        await tx.execute(
            "UPDATE salebot_callbacks SET variables_saved = 1, updated_at = ? WHERE id = ?",
            (now, item_id),
        )

    @staticmethod
    async def mark_sending(tx: aiosqlite.Connection, item_id: int, now: float) -> bool:
        """Committed before the callback is sent: a process that dies meanwhile leaves it
        'sending', which the next start reads as "may have landed", never as "send again"."""
        cursor = await tx.execute(
            "UPDATE salebot_callbacks SET state = 'sending', updated_at = ? "
            "WHERE id = ? AND state = 'pending'",
            (now, item_id),
        )
        return cursor.rowcount == 1

    @staticmethod
    async def settle(
        tx: aiosqlite.Connection,
        item_id: int,
        state: str,
        *,
        now: float,
        cause: str | None = None,
        error: str | None = None,
        retry_at: float | None = None,
        from_state: str = "sending",
    ) -> None:
        await _CALLBACKS.settle(
            tx,
            item_id,
            state,
            from_state=from_state,
            now=now,
            cause=cause,
            error=error,
            retry_at=retry_at,
        )

    async def interrupted(self, now: float, keep: Collection[int]) -> int:
        """Callbacks left 'sending' (but for those in ``keep``, being sent now) by a process
        or a loop that stopped mid-call: they may have landed."""
        async with self._database.transaction() as tx:
            cursor = await tx.execute(
                "UPDATE salebot_callbacks SET state = 'uncertain', cause = 'interrupted', "
                "last_error = 'stopped while sending', updated_at = ? "
                "WHERE state = 'sending' AND id NOT IN (SELECT value FROM json_each(?))",
                (now, json.dumps(sorted(keep))),
            )
            return cursor.rowcount

    @staticmethod
    async def withdraw(tx: aiosqlite.Connection, telegram_id: int, now: float) -> None:
        """The person was unlinked: callbacks not sent yet are dropped, and their events wait
        for a link again."""
        await tx.execute(
            "UPDATE getcourse_events SET state = 'waiting_link', telegram_id = NULL "
            "WHERE id IN (SELECT event_row FROM salebot_callbacks WHERE telegram_id = ? "
            "AND state IN ('pending', 'failed') AND event_row IS NOT NULL)",
            (telegram_id,),
        )
        await tx.execute(
            "UPDATE salebot_callbacks SET state = 'superseded', updated_at = ? "
            "WHERE telegram_id = ? AND state IN ('pending', 'failed')",
            (now, telegram_id),
        )

    async def latest_for(self, telegram_id: int, limit: int) -> list[SalebotCallback]:
        rows = await self._database.fetchall(
            "SELECT * FROM salebot_callbacks WHERE telegram_id = ? ORDER BY id DESC LIMIT ?",
            (telegram_id, limit),
        )
        return [_to_callback(row) for row in rows]

    async def waiting_by_cause(self, uncertain_since: float) -> dict[tuple[str, str | None], int]:
        """Pending and given-up callbacks, and those that may have landed since
        ``uncertain_since`` (nobody can mend those: they are shown for a while, then left)."""
        rows = await self._database.fetchall(
            "SELECT state, cause, COUNT(*) FROM salebot_callbacks "
            "WHERE state IN ('pending', 'failed') OR (state = 'uncertain' AND updated_at >= ?) "
            "GROUP BY state, cause",
            (uncertain_since,),
        )
        return {(row[0], row[1]): int(row[2]) for row in rows}

    @staticmethod
    async def retry_all_now(tx: aiosqlite.Connection, now: float) -> int:
        """Every pending or given-up callback due now; never an uncertain one (it may have
        landed: only an operator who checked Salebot can tell)."""
        cursor = await tx.execute(
            "UPDATE salebot_callbacks SET state = 'pending', next_attempt_at = ?, updated_at = ? "
            "WHERE state IN ('pending', 'failed')",
            (now, now),
        )
        return cursor.rowcount


class EventRepository(Repository):
    @staticmethod
    async def add(
        tx: aiosqlite.Connection,
        *,
        event: str,
        event_id: str | None,
        gc_user_id: str,
        email: str,
        variables: dict[str, str],
        now: float,
    ) -> int | None:
        """The new event's row; ``None`` when its ``event_id`` was stored before."""
        cursor = await tx.execute(
            "INSERT INTO getcourse_events (event, event_id, gc_user_id, email, variables, "
            "received_at, state) VALUES (?, ?, ?, ?, ?, ?, 'waiting_link') "
            "ON CONFLICT (event_id) DO NOTHING",
            (event, event_id, gc_user_id, email, json.dumps(variables, ensure_ascii=False), now),
        )
        return cursor.lastrowid if cursor.rowcount == 1 else None

    @staticmethod
    async def waiting_for(
        tx: aiosqlite.Connection, gc_user_id: str, email: str, since: float
    ) -> list[aiosqlite.Row]:
        """Events still waiting for a link, of this GetCourse user or email, oldest first."""
        return await fetch_all(
            tx,
            "SELECT * FROM getcourse_events WHERE state = 'waiting_link' AND received_at >= ? "
            "AND ((gc_user_id != '' AND gc_user_id = ?) OR (email != '' AND email = ?)) "
            "ORDER BY id",
            (since, gc_user_id, email),
        )

    @staticmethod
    async def assign(tx: aiosqlite.Connection, row_id: int, telegram_id: int) -> None:
        await tx.execute(
            "UPDATE getcourse_events SET state = 'queued', telegram_id = ? WHERE id = ?",
            (telegram_id, row_id),
        )

    async def expire(self, before: float) -> int:
        async with self._database.transaction() as tx:
            cursor = await tx.execute(
                "UPDATE getcourse_events SET state = 'expired' "
                "WHERE state = 'waiting_link' AND received_at < ?",
                (before,),
            )
            return cursor.rowcount

    async def latest_for(self, telegram_id: int, limit: int) -> list[GetCourseEvent]:
        rows = await self._database.fetchall(
            "SELECT e.id, e.event, e.received_at, e.state, c.state AS delivery "
            "FROM getcourse_events e LEFT JOIN salebot_callbacks c ON c.event_row = e.id "
            "AND c.state != 'superseded' WHERE e.telegram_id = ? ORDER BY e.id DESC LIMIT ?",
            (telegram_id, limit),
        )
        return [
            GetCourseEvent(
                id=int(row["id"]),
                event=row["event"],
                received_at=datetime.fromtimestamp(row["received_at"], UTC),
                state=row["state"],
                delivery=row["delivery"],
            )
            for row in rows
        ]

    async def counts(self) -> dict[tuple[str, str], int]:
        """Events by name and where they stand: delivered, waiting (for a link or a try),
        failed, uncertain (may have landed) or expired."""
        rows = await self._database.fetchall(
            "SELECT e.event, CASE WHEN e.state != 'queued' THEN e.state "
            "WHEN c.state IN ('pending', 'sending') THEN 'waiting' ELSE c.state END AS stage, "
            "COUNT(*) FROM getcourse_events e LEFT JOIN salebot_callbacks c "
            "ON c.event_row = e.id AND c.state != 'superseded' GROUP BY e.event, stage"
        )
        return {(row[0], row[1] or "waiting"): int(row[2]) for row in rows}

    async def waiting_count(self) -> int:
        """Events not delivered yet and not given up: waiting for a link or for delivery."""
        row = await self._database.fetchone(
            "SELECT COUNT(*) FROM getcourse_events e WHERE e.state = 'waiting_link' OR "
            "(e.state = 'queued' AND EXISTS (SELECT 1 FROM salebot_callbacks c "
            "WHERE c.event_row = e.id AND c.state IN ('pending', 'sending')))"
        )
        return int(row[0]) if row else 0


def _to_field_write(row: aiosqlite.Row) -> FieldWrite:
    return FieldWrite(
        id=int(row["id"]),
        telegram_id=int(row["telegram_id"]),
        email=row["email"],
        gc_user_id=row["gc_user_id"],
        blank=bool(row["blank"]),
        fields=json.loads(row["fields"]),
        state=row["state"],
        attempts=int(row["attempts"]),
        next_attempt_at=float(row["next_attempt_at"]),
        cause=row["cause"],
        last_error=row["last_error"],
        created_at=datetime.fromtimestamp(row["created_at"], UTC),
        updated_at=datetime.fromtimestamp(row["updated_at"], UTC),
    )


def _to_callback(row: aiosqlite.Row) -> SalebotCallback:
    return SalebotCallback(
        id=int(row["id"]),
        telegram_id=int(row["telegram_id"]),
        event_row=row["event_row"],
        message=row["message"],
        variables=json.loads(row["variables"]),
        variables_saved=bool(row["variables_saved"]),
        state=row["state"],
        attempts=int(row["attempts"]),
        cause=row["cause"],
        last_error=row["last_error"],
        created_at=datetime.fromtimestamp(row["created_at"], UTC),
        updated_at=datetime.fromtimestamp(row["updated_at"], UTC),
    )

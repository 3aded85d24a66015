"""The ``gc_directory`` table (the local mirror of the school's GetCourse users) and the
``directory_syncs`` table (each sync run and the step it is on, for resuming).

``status`` is NULL unless something told it: users exports carry no status column, so a full
sync learns who is banned or deactivated from ``status=`` exports (``set_status``), and the Tech
API names the status of the user it returns. NULL means "not known to be blocked"."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

import aiosqlite

from services.models import GetCourseUser
from services.storage.database import Repository, fetch_all, fetch_one, insert

# Only what lookups and operator cards use: a GetCourse export's other columns (the school's
# custom fields, UTM tags, city...) are not kept.
_COLUMNS = "gc_user_id, email, phone, first_name, last_name, status, created_at"
_BY_ID = f"SELECT {_COLUMNS} FROM gc_directory WHERE gc_user_id = ?"
_BY_EMAIL = f"SELECT {_COLUMNS} FROM gc_directory WHERE email = ? ORDER BY gc_user_id LIMIT 1"
# GetCourse's own column for the registration date; kept in its own indexed-friendly column.
CREATED_COLUMN = "Создан"
# ``SyncRun.next_day`` of a full run that has read every window and is on a status export.
STATUS_STEP = "status:"
_RUN_COLUMNS = (
    "id, kind, started_at, first_day, last_day, next_day, window_first, export_id, rows, covered_at"
)
_ON_CONFLICT = (
    "ON CONFLICT (gc_user_id) DO UPDATE SET email = excluded.email, "
    "phone = excluded.phone, first_name = excluded.first_name, "
    "last_name = excluded.last_name, status = COALESCE(excluded.status, status), "
    "created_at = excluded.created_at, synced_at = excluded.synced_at"
)
_UPSERT = (
    f"INSERT INTO gc_directory ({_COLUMNS}, synced_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    + _ON_CONFLICT
)
# The same for a whole batch in one statement, its rows one JSON array of ``_values`` (without
# synced_at): atomic on its own, so one trip to the connection's thread, not three (BEGIN, the
# rows, COMMIT), and SQLite reads the rows itself ("WHERE true" is SQLite's rule for an upsert
# from a SELECT).
_UPSERT_BATCH = (
    f"INSERT INTO gc_directory ({_COLUMNS}, synced_at) SELECT "
    + ", ".join(f"json_extract(value, '$[{n}]')" for n in range(len(_COLUMNS.split(", "))))
    + ", ? FROM json_each(?) WHERE true "
    + _ON_CONFLICT
)


def normalize_phone(phone: str) -> str:
    """Digits only, so "+7 (916) 123-45-67" and "79161234567" meet in the index.

    Written without "+", 11 digits starting with 8 is a Russian number with its trunk prefix
    ("8 916 123-45-67"): stored as +7, its international form. With "+" it is left alone
    (+84 912 345 678 is Vietnam)."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if len(digits) == 11 and digits.startswith("8") and not phone.lstrip().startswith("+"):
        return "7" + digits[1:]
    return digits


def phone_keys(phone: str) -> list[str]:
    """What to look a typed phone up by: its normalised digits and, when different, the digits as
    typed (a row stored before the trunk-prefix rule, or a foreign number typed without "+")."""
    keys = [normalize_phone(phone), "".join(ch for ch in phone if ch.isdigit())]
    return [key for position, key in enumerate(keys) if key and key not in keys[:position]]


def international_phone(digits: str) -> str:
    """A stored phone as answers carry it: "+<digits>" for a whole international number.

    11 to 15 digits counts as one (E.164 allows 15; Russian numbers have 11). Ten digits or fewer
    is what a Russian or North American number looks like without its country code, and a "+"
    would make it another country's number, so such a phone is given as stored."""
    return f"+{digits}" if 11 <= len(digits) <= 15 else digits


@dataclass(frozen=True)
class SyncRun:
    id: int
    kind: str
    started_at: float
    first_day: str
    last_day: str
    # Windows are read newest-first: the last day of the window in progress (or still to do),
    # every later day being read; a day before ``first_day`` once the windows are done;
    # ``STATUS_STEP + status`` while a full run is on its status exports.
    next_day: str
    window_first: str  # the first day of that window
    export_id: int | None
    rows: int
    # Once the windows are done, every registration before this moment is read: the start of
    # the run, or of a later window that reached today (read for people waiting).
    covered_at: float

    @property
    def status_step(self) -> str | None:
        """The GetCourse status a full run is refreshing once its windows are read, else None."""
        if not self.next_day.startswith(STATUS_STEP):
            return None
        return self.next_day.removeprefix(STATUS_STEP)

    @property
    def windows_done(self) -> bool:
        return self.status_step is not None or self.next_day < self.first_day


@dataclass(frozen=True)
class Learning:
    """What the directory made of a user a GetCourse event named (``learn``)."""

    # The directory's row for that ID and email: just added, or there already.
    user: GetCourseUser | None = None
    # Another user ID the directory holds that email under (the event changed nothing).
    email_holder: str | None = None


@dataclass(frozen=True)
class DoneRun:
    """A sync run that read every window."""

    finished_at: float
    rows: int


class DirectoryRepository(Repository):
    async def by_email(self, email: str) -> GetCourseUser | None:
        row = await self._database.fetchone(_BY_EMAIL, (email,))
        return None if row is None else _user(row)

    async def by_id(self, gc_user_id: str) -> GetCourseUser | None:
        row = await self._database.fetchone(_BY_ID, (gc_user_id,))
        return None if row is None else _user(row)

    async def by_phone(self, phone: str) -> list[GetCourseUser]:
        keys = phone_keys(phone)
        if not keys:
            return []
        # "phone != ''" repeats the partial index's condition: without it SQLite scans the table.
        rows = await self._database.fetchall(
            f"SELECT {_COLUMNS} FROM gc_directory "
            f"WHERE phone IN ({', '.join('?' * len(keys))}) AND phone != '' ORDER BY gc_user_id",
            keys,
        )
        return [_user(row) for row in rows]

    async def count(self) -> int:
        return await self._database.fetch_count("SELECT COUNT(*) FROM gc_directory")

    @staticmethod
    async def learn(tx: aiosqlite.Connection, user: GetCourseUser, now: float) -> Learning:
        """A user GetCourse announced (an event naming their ID and email): added when the
        directory holds neither that ID nor that email; a row it holds is never overwritten
        (a sync wrote it, with more than an event carries, and refreshes it). ``user.email`` is
        normalised, as the event parser leaves it."""
        row = await fetch_one(tx, _BY_ID, (user.id,))
        if row is not None:
            known = _user(row)
            if known.email == user.email:
                return Learning(known)
            return Learning()  # another email: the syncs refresh it
        row = await fetch_one(tx, _BY_EMAIL, (user.email,))
        if row is not None:
            return Learning(email_holder=str(row[0]))
        await tx.execute(_UPSERT, _values(user, now))
        row = await fetch_one(tx, _BY_ID, (user.id,))
        assert row is not None
        return Learning(_user(row))

    async def upsert(self, users: Sequence[GetCourseUser], now: float) -> None:
        """Store ``users`` in one statement: a sync's batches hold the connection every lookup
        shares only as long as SQLite needs."""
        if not users:
            return
        rows = json.dumps([_values(user, now)[:-1] for user in users], ensure_ascii=False)
        await self._database.write(_UPSERT_BATCH, (now, rows))

    async def set_status(
        self, users: Sequence[GetCourseUser], status: str, now: float
    ) -> list[str]:
        """Upsert the users a ``status=`` export returned, with that status; returns the IDs
        whose stored status was another (newly banned, say), in the order given."""
        if not users:
            return []
        ids = [user.id for user in users]
        async with self._database.transaction() as tx:
            rows = await fetch_all(
                tx,
                "SELECT gc_user_id, status FROM gc_directory "
                "WHERE gc_user_id IN (SELECT value FROM json_each(?))",
                (json.dumps(ids),),
            )
            before = {str(row[0]): row[1] for row in rows}
            await tx.executemany(
                _UPSERT, [_values(replace(user, status=status), now) for user in users]
            )
        return [gc_user_id for gc_user_id in ids if before.get(gc_user_id) != status]

    async def clear_status(self, status: str, keep: Collection[str]) -> int:
        """Users stored with ``status`` whom the latest ``status=`` export no longer holds (say,
        unbanned) go back to NULL: not known to be blocked; returns how many."""
        async with self._database.transaction() as tx:
            rows = await fetch_all(
                tx, "SELECT gc_user_id FROM gc_directory WHERE status = ?", (status,)
            )
            stale = [(str(row[0]),) for row in rows if str(row[0]) not in keep]
            await tx.executemany(
                "UPDATE gc_directory SET status = NULL WHERE gc_user_id = ?", stale
            )
        return len(stale)

    async def remove_unseen_since(self, since: float) -> list[GetCourseUser]:
        """Drop the users a complete full sync did not see (deleted in GetCourse); returns them."""
        async with self._database.transaction() as tx:
            rows = await fetch_all(
                tx, f"SELECT {_COLUMNS} FROM gc_directory WHERE synced_at < ?", (since,)
            )
            await tx.execute("DELETE FROM gc_directory WHERE synced_at < ?", (since,))
        return [_user(row) for row in rows]

    async def count_synced_since(self, since: float) -> int:
        """Users a run that began at ``since`` has read (or a lookup found meanwhile)."""
        return await self._database.fetch_count(
            "SELECT COUNT(*) FROM gc_directory WHERE synced_at >= ?", (since,)
        )

    # ----- sync runs -----

    async def open_run(self, kind: str) -> SyncRun | None:
        row = await self._database.fetchone(
            f"SELECT {_RUN_COLUMNS} FROM directory_syncs WHERE kind = ? AND finished_at IS NULL "
            "ORDER BY id DESC LIMIT 1",
            (kind,),
        )
        return None if row is None else _run(row)

    async def covered_until(self) -> float | None:
        """Every registration before this moment is in the directory: the start of the latest
        run that read all its windows (each run begins where the coverage before it ended)."""
        row = await self._database.fetchone(
            "SELECT MAX(COALESCE(covered_at, started_at)) FROM directory_syncs "
            "WHERE outcome = 'done'"
        )
        done = [float(row[0])] if row and row[0] is not None else []
        open_runs = await self._database.fetchall(
            f"SELECT {_RUN_COLUMNS} FROM directory_syncs WHERE finished_at IS NULL"
        )
        read = [run.covered_at for run in map(_run, open_runs) if run.windows_done]
        return max(done + read, default=None)

    async def begin_run(
        self, kind: str, first_day: str, last_day: str, window_first: str, now: float
    ) -> SyncRun:
        async with self._database.transaction() as tx:
            run_id = await insert(
                tx,
                "INSERT INTO directory_syncs "
                "(kind, started_at, first_day, last_day, next_day, window_first, covered_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (kind, now, first_day, last_day, last_day, window_first, now),
            )
        return SyncRun(run_id, kind, now, first_day, last_day, last_day, window_first, None, 0, now)

    async def export_started(self, run_id: int, export_id: int) -> None:
        async with self._database.transaction() as tx:
            await tx.execute(
                "UPDATE directory_syncs SET export_id = ? WHERE id = ?", (export_id, run_id)
            )

    async def step_done(
        self,
        run_id: int,
        next_day: str,
        rows: int,
        window_first: str | None = None,
        covered_at: float | None = None,
    ) -> None:
        """A window or a status export is done: the run goes on at ``next_day`` (with the
        window ``window_first..next_day`` when it is on its windows)."""
        async with self._database.transaction() as tx:
            await tx.execute(
                "UPDATE directory_syncs SET next_day = ?, window_first = ?, export_id = NULL, "
                "rows = ?, covered_at = MAX(covered_at, COALESCE(?, 0)) WHERE id = ?",
                (next_day, window_first, rows, covered_at, run_id),
            )

    async def finish_run(self, run_id: int, outcome: str, now: float) -> None:
        async with self._database.transaction() as tx:
            await tx.execute(
                "UPDATE directory_syncs SET finished_at = ?, outcome = ? WHERE id = ?",
                (now, outcome, run_id),
            )

    async def last_finished(self, kind: str) -> float | None:
        return await self._database.fetch_time(
            "SELECT MAX(finished_at) FROM directory_syncs WHERE kind = ? AND outcome = 'done'",
            (kind,),
        )

    async def last_done(self, kind: str) -> DoneRun | None:
        row = await self._database.fetchone(
            "SELECT finished_at, rows FROM directory_syncs "
            "WHERE kind = ? AND outcome = 'done' ORDER BY finished_at DESC LIMIT 1",
            (kind,),
        )
        if row is None:
            return None
        return DoneRun(float(row["finished_at"]), int(row["rows"]))


def _run(row: Sequence[object]) -> SyncRun:
    (
        run_id,
        kind,
        started_at,
        first_day,
        last_day,
        next_day,
        window_first,
        export_id,
        rows,
        covered_at,
    ) = row
    return SyncRun(
        id=int(str(run_id)),
        kind=str(kind),
        started_at=float(str(started_at)),
        first_day=str(first_day),
        last_day=str(last_day),
        next_day=str(next_day),
        window_first=str(window_first or first_day),
        export_id=None if export_id is None else int(str(export_id)),
        rows=int(str(rows)),
        covered_at=float(str(covered_at if covered_at is not None else started_at)),
    )


def _values(user: GetCourseUser, now: float) -> tuple[object, ...]:
    return (
        user.id,
        user.email.strip().lower(),
        normalize_phone(user.phone),
        user.first_name,
        user.last_name,
        user.status,
        user.custom_fields.get(CREATED_COLUMN, ""),
        now,
    )


def _user(row: Sequence[object]) -> GetCourseUser:
    gc_user_id, email, phone, first_name, last_name, status, created_at = row
    fields = {CREATED_COLUMN: str(created_at)} if created_at else {}
    return GetCourseUser(
        id=str(gc_user_id),
        email=str(email),
        first_name=str(first_name),
        last_name=str(last_name),
        phone=international_phone(str(phone)),
        status=None if status is None else str(status),
        custom_fields=fields,
    )

"""Erasing a person: everything the bot holds about one Telegram account, on their ``/forget``
or an operator's ``/erase``.

``PERSONAL_TABLES`` declares every table that holds a person's Telegram ID or email and how
their rows are found; erasing walks that list in one transaction. A new table holding such
columns is one more line there (a test walks the schema and fails on a table left out).

The person's Salebot client loses our variables through the outbox, so the blanking survives a
restart: that write (it carries no email) is the one row kept, and only until delivered."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import aiosqlite

from services.email import mask_email
from services.linking.bridge import LinkFollowUps
from services.storage.audit import AuditAction, AuditRepository
from services.storage.database import Database, fetch_all, fetch_one
from services.storage.links import LinkRepository
from services.storage.outbox import OutboxRepository

log = logging.getLogger(__name__)


class Held(StrEnum):
    """What a table holds about a person, as they are told it was removed."""

    LINK = "link"
    SALEBOT_WRITES = "salebot_writes"
    LOOKUPS = "lookups"
    QUEUED_LOOKUP = "queued_lookup"
    CONFLICTS = "conflicts"
    EVENTS = "events"
    PROFILE = "profile"
    DIALOG = "dialog"
    DIRECTORY = "directory"
    OPERATOR_RECORDS = "operator_records"
    PROOF = "proof"
    GETCOURSE = "getcourse"  # GetCourse events, field writes and the callbacks they caused


@dataclass(frozen=True)
class PersonalTable:
    """A table with a person's data and how to find their rows.

    Named parameters of the conditions: ``:telegram_id``, ``:target`` (the ID as text),
    ``:emails`` (a JSON array of the person's own emails) and ``:telegram_id_json`` (how the
    ID appears in stored JSON)."""

    name: str
    held: Held
    # Rows whose column equals the person's Telegram ID.
    by_telegram_id: tuple[str, ...] = ()
    # Rows whose column holds one of the person's emails (tables with no Telegram ID).
    by_email: tuple[str, ...] = ()
    # (email column, Telegram ID column): where an email is known to be the person's own,
    # read before anything is deleted to find their rows ``by_email`` elsewhere.
    own_email: tuple[str, str] | None = None
    # A condition of its own, for tables whose key is not a plain column.
    where: str | None = None
    # Instead of deleting, keep the rows with these columns emptied ("col = value, ...").
    scrub: str | None = None

    @property
    def condition(self) -> str:
        if self.where is not None:
            return self.where
        parts = [f"{column} = :telegram_id" for column in self.by_telegram_id]
        parts += [f"{column} IN (SELECT value FROM json_each(:emails))" for column in self.by_email]
        return " OR ".join(parts)


PERSONAL_TABLES: tuple[PersonalTable, ...] = (
    PersonalTable(
        "links", Held.LINK, by_telegram_id=("telegram_id",), own_email=("email", "telegram_id")
    ),
    PersonalTable("outbox", Held.SALEBOT_WRITES, by_telegram_id=("telegram_id",)),
    PersonalTable("lookups", Held.LOOKUPS, by_telegram_id=("telegram_id",)),
    PersonalTable("queued_lookups", Held.QUEUED_LOOKUP, by_telegram_id=("telegram_id", "chat_id")),
    PersonalTable(
        "link_conflicts",
        Held.CONFLICTS,
        by_telegram_id=("telegram_id", "holder_telegram_id"),
        # The email of a conflict is the holder's; the claimant typed someone else's.
        own_email=("email", "holder_telegram_id"),
    ),
    PersonalTable("link_events", Held.EVENTS, by_telegram_id=("telegram_id",)),
    # A proof of ownership under way (its email was typed, not proven: not an own email).
    # ``proof_letters`` holds only hashes of addresses, gone within the hour.
    PersonalTable("ownership_proofs", Held.PROOF, by_telegram_id=("telegram_id", "chat_id")),
    PersonalTable("telegram_profiles", Held.PROFILE, by_telegram_id=("telegram_id",)),
    PersonalTable("blocked_chats", Held.PROFILE, by_telegram_id=("telegram_id",)),
    PersonalTable("operator_menus", Held.PROFILE, by_telegram_id=("telegram_id", "chat_id")),
    PersonalTable(
        "dialog_state",
        Held.DIALOG,
        # Keys are "fsm:<bot>:<chat>:<user>:<destiny>"; an operator's unconfirmed /link of
        # the person keeps their ID and email in its data.
        where="key LIKE '%:' || :telegram_id || ':%' OR instr(data, :telegram_id_json) > 0 "
        "OR EXISTS (SELECT 1 FROM json_each(:emails) AS e WHERE instr(data, e.value) > 0)",
    ),
    # The local copy of GetCourse and the exports started for an email: a full sync brings a
    # student who is still in GetCourse back into the copy (it is the school's list there).
    PersonalTable("gc_directory", Held.DIRECTORY, by_email=("email",)),
    PersonalTable("getcourse_exports", Held.DIRECTORY, by_email=("email",)),
    # Both directions (issue 13). ``LinkFollowUps.forget`` runs first: it queues the blanking
    # of the person's GetCourse fields (kept, with no Telegram ID, until delivered) and removes
    # the events of their GetCourse user; these lines catch everything else of theirs.
    PersonalTable(
        "getcourse_field_writes",
        Held.GETCOURSE,
        # Not the blanking write of an erased person (Telegram ID 0): it needs the email until
        # it is delivered, and then goes.
        where="telegram_id = :telegram_id OR (telegram_id != 0 "
        "AND email IN (SELECT value FROM json_each(:emails)))",
    ),
    PersonalTable(
        "getcourse_events", Held.GETCOURSE, by_telegram_id=("telegram_id",), by_email=("email",)
    ),
    PersonalTable("salebot_callbacks", Held.GETCOURSE, by_telegram_id=("telegram_id",)),
    # Who did what to whom and when stays; what the person's data was does not.
    PersonalTable(
        "operator_audit",
        Held.OPERATOR_RECORDS,
        where="target = :target AND (before != '{}' OR after != '{}')",
        scrub="before = '{}', after = '{}'",
    ),
)


@dataclass(frozen=True)
class Erased:
    telegram_id: int
    removed: dict[Held, int]  # rows removed (operator records: emptied) of each kind held
    salebot_blanked: bool  # a write blanking our Salebot variables is queued

    @property
    def nothing(self) -> bool:
        return not self.removed and not self.salebot_blanked


class ErasureService:
    def __init__(
        self,
        database: Database,
        on_enqueued: Callable[[], None],
        *,
        forget_cached: Sequence[Callable[[int], None]] = (),
        tables: Sequence[PersonalTable] = PERSONAL_TABLES,
        clock: Callable[[], float] = time.time,
        follow_ups: LinkFollowUps | None = None,
    ) -> None:
        self._database = database
        self._follow_ups = follow_ups
        self._on_enqueued = on_enqueued
        # In-memory copies (profiles, reachability) that must forget the person too.
        self._forget_cached = forget_cached
        self._tables = tables
        self._clock = clock

    async def erase(self, telegram_id: int, operator_id: int | None = None) -> Erased:
        """Everything about ``telegram_id``, in one transaction; ``operator_id`` when an
        operator erased them (audited: who, whom, when; not what)."""
        now = self._clock()
        async with self._database.transaction() as tx:
            emails = await self._own_emails(tx, telegram_id)
            # Salebot may hold our variables for anyone we ever wrote to.
            wrote = await fetch_one(
                tx, "SELECT 1 FROM outbox WHERE telegram_id = ? LIMIT 1", (telegram_id,)
            )
            linked = await fetch_one(
                tx, "SELECT 1 FROM links WHERE telegram_id = ?", (telegram_id,)
            )
            parameters = {
                "telegram_id": telegram_id,
                "target": str(telegram_id),
                "emails": json.dumps(sorted(emails)),
                "telegram_id_json": f'"telegram_id": {telegram_id}',
            }
            removed: dict[Held, int] = {}
            if self._follow_ups is not None:
                link = await LinkRepository.get_in(tx, telegram_id)
                if forgotten := await self._follow_ups.forget(tx, telegram_id, link):
                    removed[Held.GETCOURSE] = forgotten
            for table in self._tables:
                count = await _erase_rows(tx, table, parameters)
                if count:
                    removed[table.held] = removed.get(table.held, 0) + count
            blanked = wrote is not None or linked is not None
            if blanked:
                await OutboxRepository.enqueue_blank(
                    tx, telegram_id, now, erase_when_delivered=True
                )
            await AuditRepository.record(tx, now, operator_id, AuditAction.ERASE, telegram_id)
        for forget in self._forget_cached:
            forget(telegram_id)
        if blanked:
            self._on_enqueued()
        log.info(
            "telegram %s erased%s: %s; salebot variables %s",
            telegram_id,
            f" by operator {operator_id}" if operator_id is not None else " on request",
            ", ".join(f"{held} {count}" for held, count in removed.items()) or "nothing held",
            "to be blanked" if blanked else "never written",
        )
        return Erased(telegram_id, removed, blanked)

    async def _own_emails(self, tx: aiosqlite.Connection, telegram_id: int) -> set[str]:
        emails: set[str] = set()
        for table in self._tables:
            if table.own_email is None:
                continue
            email_column, owner_column = table.own_email
            rows = await fetch_all(
                tx,
                f"SELECT {email_column} FROM {table.name} WHERE {owner_column} = ?",
                (telegram_id,),
            )
            emails.update(str(row[0]) for row in rows if row[0])
        if emails:
            log.debug("erasing %s", ", ".join(mask_email(email) for email in sorted(emails)))
        return emails


async def _erase_rows(
    tx: aiosqlite.Connection, table: PersonalTable, parameters: dict[str, object]
) -> int:
    if table.scrub is not None:
        sql = f"UPDATE {table.name} SET {table.scrub} WHERE {table.condition}"
    else:
        sql = f"DELETE FROM {table.name} WHERE {table.condition}"
    cursor = await tx.execute(sql, parameters)
    return max(cursor.rowcount, 0)

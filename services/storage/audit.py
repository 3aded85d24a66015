"""The ``operator_audit`` table: every operator action (who, what, on whom, before, after,
when). Rows are only ever added."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import aiosqlite

from services.storage.database import Repository


class AuditAction(StrEnum):
    LINK = "link"
    UNLINK = "unlink"
    RESYNC = "resync"
    RETRY_ALL = "retry_all"
    EXPORT = "export"
    SYNC = "sync"
    ERASE = "erase"
    PROOF_CONFIRM = "proof_confirm"  # confirmed a person's proof of ownership (the link follows)
    PROOF_REFUSE = "proof_refuse"


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    operator_id: int
    operator_username: str | None
    action: AuditAction
    target: str
    before: dict[str, str]
    after: dict[str, str]


class AuditRepository(Repository):
    @staticmethod
    async def record(
        tx: aiosqlite.Connection,
        at: float,
        operator_id: int | None,
        action: AuditAction,
        target: int | str,
        before: dict[str, str] | None = None,
        after: dict[str, str] | None = None,
    ) -> None:
        """Written in the transaction of the change itself: no change without its record.
        Only operators are audited: with no ``operator_id`` (a person's own change) nothing
        is written. A Telegram ID as ``target`` is kept as its digits."""
        if operator_id is None:
            return
        await tx.execute(
            "INSERT INTO operator_audit (at, operator_id, action, target, before, after) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                at,
                operator_id,
                action,
                str(target),
                json.dumps(before or {}, ensure_ascii=False),
                json.dumps(after or {}, ensure_ascii=False),
            ),
        )

    async def latest(self, limit: int) -> list[AuditEntry]:
        rows = await self._database.fetchall(
            "SELECT a.*, p.username FROM operator_audit a "
            "LEFT JOIN telegram_profiles p ON p.telegram_id = a.operator_id "
            "ORDER BY a.id DESC LIMIT ?",
            (limit,),
        )
        return [
            AuditEntry(
                at=datetime.fromtimestamp(row["at"], UTC),
                operator_id=int(row["operator_id"]),
                operator_username=row["username"],
                action=AuditAction(row["action"]),
                target=row["target"],
                before=json.loads(row["before"]),
                after=json.loads(row["after"]),
            )
            for row in rows
        ]

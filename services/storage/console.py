"""Read-only queries across tables for the operator console: finding people, the links export,
counts kept by other parts of the bot (lookups, conflicts) and the database's size."""

from __future__ import annotations

from dataclasses import dataclass, fields

from services.storage.database import Database

# The outcome the linking flow records in ``lookups`` when GetCourse has no such email.
LOOKUP_NOT_FOUND = "not_found"


@dataclass(frozen=True)
class ExportRow:
    """One link with what we know of the person and of its latest Salebot write."""

    telegram_id: int
    username: str | None
    first_name: str | None
    email: str
    gc_user_id: str
    gc_name: str
    salebot_client_id: int | None
    linked_at: str
    updated_at: str
    linked_by: int | None
    delivery_state: str | None
    delivery_updated_at: str | None
    delivery_error: str | None


class ConsoleQueries:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def ids_by_email(self, email: str) -> list[int]:
        rows = await self._database.fetchall(
            "SELECT telegram_id FROM links WHERE email = ? ORDER BY telegram_id", (email,)
        )
        return [int(row[0]) for row in rows]

    async def ids_by_number(self, number: int) -> list[int]:
        """A number may be a Telegram ID (linked or not), a GetCourse ID or a Salebot client ID."""
        rows = await self._database.fetchall(
            "SELECT telegram_id FROM links WHERE telegram_id = ? OR gc_user_id = ? "
            "OR salebot_client_id = ? "
            "UNION SELECT telegram_id FROM telegram_profiles WHERE telegram_id = ? "
            "ORDER BY telegram_id",
            (number, str(number), number, number),
        )
        return [int(row[0]) for row in rows]

    async def ids_holding(self, email: str, gc_user_id: str, besides: int) -> list[int]:
        """Other Telegram accounts linked to this email or this GetCourse user."""
        rows = await self._database.fetchall(
            "SELECT telegram_id FROM links WHERE (email = ? OR gc_user_id = ?) "
            "AND telegram_id != ? ORDER BY telegram_id",
            (email, gc_user_id, besides),
        )
        return [int(row[0]) for row in rows]

    async def export_rows(self) -> list[ExportRow]:
        rows = await self._database.fetchall(
            """
            SELECT l.*, p.username, p.first_name,
                   o.state AS delivery_state, o.updated_at AS delivery_updated_at,
                   o.last_error AS delivery_error
            FROM links l
            LEFT JOIN telegram_profiles p ON p.telegram_id = l.telegram_id
            LEFT JOIN outbox o ON o.id =
                (SELECT MAX(id) FROM outbox WHERE outbox.telegram_id = l.telegram_id)
            ORDER BY l.linked_at, l.telegram_id
            """
        )
        # The query names its columns as ExportRow names its fields.
        names = [column.name for column in fields(ExportRow)]
        return [ExportRow(**{name: row[name] for name in names}) for row in rows]

    async def not_found_since(self, since: float) -> int:
        return await self._count(
            "SELECT COUNT(*) FROM lookups WHERE outcome = ? AND at >= ?", LOOKUP_NOT_FOUND, since
        )

    async def conflicts_since(self, since: float) -> int:
        # ``at`` is an ISO stamp there; julianday reads it whatever its precision.
        return await self._count(
            "SELECT COUNT(*) FROM link_conflicts WHERE (julianday(at) - 2440587.5) * 86400.0 >= ?",
            since,
        )

    async def _count(self, sql: str, *parameters: object) -> int:
        row = await self._database.fetchone(sql, parameters)
        return int(row[0]) if row else 0

    async def database_bytes(self) -> int:
        pages = await self._database.fetchone("PRAGMA page_count")
        size = await self._database.fetchone("PRAGMA page_size")
        return int(pages[0]) * int(size[0]) if pages and size else 0

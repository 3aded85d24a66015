"""The CSV export of every link, for a spreadsheet: UTF-8 with a BOM (so Excel reads it as
UTF-8), ISO timestamps, and no cell a spreadsheet would run as a formula. Each export is
audited: the whole list leaves the bot."""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from services.storage.audit import AuditAction, AuditRepository
from services.storage.console import ConsoleQueries, ExportRow
from services.storage.database import Database

log = logging.getLogger(__name__)

# A spreadsheet runs a cell that starts like a formula; such text is exported with a quote.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = (
    "telegram_id",
    "telegram_username",
    "telegram_first_name",
    "email",
    "gc_user_id",
    "gc_name",
    "salebot_client_id",
    "linked_at",
    "updated_at",
    "linked_by_operator",
    "salebot_write",
    "salebot_write_at",
    "salebot_last_error",
)


@dataclass(frozen=True)
class CsvExport:
    content: bytes
    rows: int


class LinksExport:
    def __init__(self, database: Database, *, clock: Callable[[], float] = time.time) -> None:
        self._database = database
        self._queries = ConsoleQueries(database)
        self._clock = clock

    async def export_csv(self, operator_id: int, delimiter: str = ",") -> CsvExport:
        """Every link as CSV, one row a link, oldest first."""
        rows = await self._queries.export_rows()
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        writer.writerows(_row(row) for row in rows)
        async with self._database.transaction() as tx:
            after = {"rows": str(len(rows))}
            await AuditRepository.record(
                tx, self._clock(), operator_id, AuditAction.EXPORT, "links", after=after
            )
        log.info("operator %s exported %d links", operator_id, len(rows))
        return CsvExport(buffer.getvalue().encode("utf-8-sig"), len(rows))


def _row(row: ExportRow) -> list[object]:
    return [
        row.telegram_id,
        _cell(row.username),
        _cell(row.first_name),
        _cell(row.email),
        _cell(row.gc_user_id),
        _cell(row.gc_name),
        row.salebot_client_id if row.salebot_client_id is not None else "",
        _iso(row.linked_at),
        _iso(row.updated_at),
        row.linked_by if row.linked_by is not None else "",
        row.delivery_state or "",
        _iso(row.delivery_updated_at),
        _cell(row.delivery_error),
    ]


def _cell(value: str | None) -> str:
    if not value:
        return ""
    return "'" + value if value.startswith(FORMULA_START) else value


def _iso(stamp: str | None) -> str:
    return datetime.fromisoformat(stamp).isoformat(timespec="seconds") if stamp else ""

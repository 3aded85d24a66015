"""The operator console, split by job: ``find`` (a person and their link health card),
``change`` (link, unlink, resync, retries, syncs started; each audited), ``report`` (the queue,
``/stats``, the audit trail, ``/health``) and ``export`` (the CSV of every link). Each job takes
only what it needs; ``OperatorConsole`` bundles the four for the composition root. Beside them,
what the console reads: the figures ``/stats``, ``/health`` and ``/metrics`` share (``figures``),
the charts (``charts``), and who writes to the bot, so operators can find a person by username
(``profiles``). Nothing here knows Telegram: the handlers render the records these jobs return."""

from __future__ import annotations

from dataclasses import dataclass

from services.console.change import OperatorChanges
from services.console.export import LinksExport
from services.console.find import PersonFinder
from services.console.report import ConsoleReports, Deployment

__all__ = [
    "ConsoleReports",
    "Deployment",
    "LinksExport",
    "OperatorChanges",
    "OperatorConsole",
    "PersonFinder",
]


@dataclass(frozen=True)
class OperatorConsole:
    find: PersonFinder
    change: OperatorChanges
    report: ConsoleReports
    export: LinksExport

"""Prometheus metrics of one running app, in a registry of its own (tests and the benchmark run
many apps in one process, and a global registry would refuse the second one's metrics).

Counters move as work happens (updates through ``bot.middlewares``, external calls
through the services' ``CallTracker``); gauges read from the database are refreshed right
before each scrape."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.console.figures import FigureBook
from services.getcourse.budget import ImportBudget
from services.getcourse.directory_sync import SyncKind
from services.health import CallOutcome
from services.supervision import LoopStatus

# A reply takes milliseconds; a link waits for a GetCourse export (up to the lookup timeout).
HANDLING_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 240)
CALL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 240)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        counter = functools.partial(Counter, registry=self.registry)
        gauge = functools.partial(Gauge, registry=self.registry)
        histogram = functools.partial(Histogram, registry=self.registry)
        self.updates = counter(
            "bot_updates",
            "Telegram updates handled, by update type and outcome (handled, unhandled, error)",
            ["type", "outcome"],
        )
        self.handling_seconds = histogram(
            "bot_update_handling_seconds",
            "Time from an update entering the dispatcher to its handler finishing",
            ["type"],
            buckets=HANDLING_BUCKETS,
        )
        self.links = gauge("bot_links", "Telegram accounts linked to a GetCourse user")
        self.outbox_pending = gauge("bot_outbox_pending", "Salebot writes waiting to be delivered")
        self.outbox_oldest_age = gauge(
            "bot_outbox_oldest_pending_age_seconds",
            "How long the longest-waiting Salebot write has waited (0 when none waits)",
        )
        self.external_calls = counter(
            "bot_external_calls",
            "Calls to GetCourse and Salebot by service, operation and outcome "
            "(ok, or the cause of the failure)",
            ["service", "operation", "outcome"],
        )
        self.external_call_seconds = histogram(
            "bot_external_call_seconds",
            "Duration of calls to GetCourse (a whole lookup) and Salebot",
            ["service"],
            buckets=CALL_BUCKETS,
        )
        self.getcourse_budget_used = gauge(
            "bot_getcourse_export_requests",
            "GetCourse export-API requests this bot spent in the rolling 2-hour window",
        )
        self.getcourse_budget_limit = gauge(
            "bot_getcourse_export_budget",
            "This bot's share of the GetCourse export budget (GETCOURSE_EXPORT_BUDGET)",
        )
        self.directory_users = gauge(
            "bot_getcourse_directory_users", "GetCourse users in the local directory"
        )
        self.directory_synced_at = gauge(
            "bot_getcourse_directory_last_sync_timestamp_seconds",
            "When the last complete directory sync of each kind (full, incremental) finished, "
            "Unix time; 0 when none has",
            ["kind"],
        )
        self.getcourse_events = counter(
            "bot_getcourse_events",
            "GetCourse events by what became of them: queued (for a linked person), waiting "
            "(nobody linked yet), duplicate (an event_id seen before), refused (secret, "
            "malformed, too large, too many), delivered (the Salebot callback landed)",
            ["outcome"],
        )
        self.getcourse_events_waiting = gauge(
            "bot_getcourse_events_waiting",
            "GetCourse events not delivered yet: waiting for a link or for their callback",
        )
        self.getcourse_import_used = gauge(
            "bot_getcourse_import_requests",
            "GetCourse import-API requests (field writes) spent in the rolling 2-hour window",
        )
        self.loop_healthy = gauge(
            "bot_background_loop_healthy",
            "1 while a background loop runs well (as /readyz counts it), else 0",
            ["loop"],
        )
        self.loop_restarts = gauge(
            "bot_background_loop_restarts",
            "Times a background loop was started again after a failure, since the bot started",
            ["loop"],
        )

    def observe_event(self, outcome: str) -> None:
        self.getcourse_events.labels(outcome).inc()

    def observe_loops(self, statuses: list[LoopStatus]) -> None:
        for status in statuses:
            self.loop_healthy.labels(status.name).set(1 if status.healthy else 0)
            self.loop_restarts.labels(status.name).set(status.restarts)

    def observe_call(self, outcome: CallOutcome) -> None:
        label = outcome.cause or "ok"
        self.external_calls.labels(outcome.service, outcome.operation, label).inc()
        self.external_call_seconds.labels(outcome.service).observe(outcome.seconds)

    async def refresh(self, book: FigureBook, import_budget: ImportBudget) -> None:
        """Read the gauges that live in the database (the figures /stats and /health show)."""
        figures = await book.read()
        self.links.set(figures.links)
        self.outbox_pending.set(figures.writes.pending)
        since = await book.oldest_pending_write_since()
        age = (datetime.now(UTC) - since).total_seconds() if since is not None else 0.0
        self.outbox_oldest_age.set(max(age, 0.0))
        self.getcourse_budget_used.set(figures.budget_used)
        self.getcourse_budget_limit.set(figures.budget_limit)
        self.directory_users.set(figures.directory_users)
        for kind in SyncKind:
            self.directory_synced_at.labels(kind).set(await book.last_sync_finished(kind) or 0.0)
        self.getcourse_events_waiting.set(await book.events_waiting())
        self.getcourse_import_used.set(await import_budget.used())

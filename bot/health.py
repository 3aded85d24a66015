"""``/healthz``, ``/readyz`` and ``/metrics`` on a small server of their own on ``HEALTH_LISTEN``
(in both run modes), apart from the public endpoints a reverse proxy forwards."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import aiosqlite
from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from bot.app import App
from bot.listening import Listener
from services.health import GETCOURSE, SALEBOT

log = logging.getLogger(__name__)

# A readiness probe must answer even when the database is stuck (SQLite waits up to 5 s).
PROBE_TIMEOUT = 3.0
# How long one database check answers the readiness probes.
DATABASE_CHECK_SECONDS = 1.0


def add_health_routes(web_app: web.Application, app: App) -> None:
    scrape = make_aiohttp_handler(app.metrics.registry)
    database = DatabaseProbe(app)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"alive": True})

    async def readyz(request: web.Request) -> web.Response:
        checks = await readiness(app, database)
        ready = all(check["ok"] for check in checks.values())
        return web.json_response({"ready": ready, "checks": checks}, status=200 if ready else 503)

    async def metrics(request: web.Request) -> web.StreamResponse:
        services = app.services
        await app.metrics.refresh(services.figures, services.import_budget)
        app.metrics.observe_loops(services.supervisor.statuses())
        return await scrape(request)

    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/readyz", readyz)
    web_app.router.add_get("/metrics", metrics)


async def readiness(app: App, database: DatabaseProbe) -> dict[str, dict[str, Any]]:
    """Each check with ``ok`` and what an operator needs to see why not."""
    checks: dict[str, dict[str, Any]] = {
        "taking_updates": {"ok": app.stop_deadline is None},
        "database": await database.check(),
        "background": _background(app),
    }
    for service in (GETCOURSE, SALEBOT):
        status = app.services.calls.status(service)
        checks[service] = {
            "ok": status.healthy,
            "last_success": _iso(status.last_success_at),
            "last_failure": _iso(status.last_failure_at),
            "last_failure_cause": status.last_failure_cause,
        }
    return checks


def _background(app: App) -> dict[str, Any]:
    """Each supervised loop; not ok while one is failing, waiting to start again, cut off, or
    not yet running long since its restart."""
    statuses = app.services.supervisor.statuses()
    loops = {
        status.name: {
            "ok": status.healthy,
            "state": status.state,
            "restarts": status.restarts,
            "last_error": status.last_error,
            "last_failure": _iso(status.last_failure_at),
        }
        for status in statuses
    }
    return {"ok": all(status.healthy for status in statuses), "loops": loops}


class DatabaseProbe:
    """Writable, and still ours: the heartbeat of the instance lock is a real write, so its
    result serves every probe for ``DATABASE_CHECK_SECONDS`` (a probe every few milliseconds
    must not become a write every few milliseconds). One check runs at a time."""

    def __init__(self, app: App, ttl: float = DATABASE_CHECK_SECONDS) -> None:
        self._app = app
        self._ttl = ttl
        self._lock = asyncio.Lock()
        self._result: dict[str, Any] | None = None
        self._checked_at = 0.0

    async def check(self) -> dict[str, Any]:
        async with self._lock:
            now = asyncio.get_running_loop().time()
            if self._result is None or now - self._checked_at >= self._ttl:
                self._result = await self._write()
                self._checked_at = asyncio.get_running_loop().time()
            return self._result

    async def _write(self) -> dict[str, Any]:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                ours = await self._app.lock.heartbeat()
        except (TimeoutError, aiosqlite.Error) as error:
            return {"ok": False, "error": f"not writable: {type(error).__name__}: {error}"}
        if not ours:
            return {"ok": False, "error": "another process took over the database lock"}
        return {"ok": True}


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


class HealthServer(Listener):
    """The health routes' own little server, on ``HEALTH_LISTEN``."""

    def __init__(self, app: App, listen: str) -> None:
        web_app = web.Application()
        add_health_routes(web_app, app)
        super().__init__(web_app, listen, "HEALTH_LISTEN", "health and metrics")

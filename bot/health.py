"""``/healthz``, ``/readyz`` and ``/metrics`` on an aiohttp application: the webhook server's, or
in polling mode a small one of their own on ``HEALTH_LISTEN``."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import aiosqlite
from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from bot.app import App
from bot.settings import split_host_port
from services.health import GETCOURSE, SALEBOT

log = logging.getLogger(__name__)

# A readiness probe must answer even when the database is stuck (SQLite waits up to 5 s).
PROBE_TIMEOUT = 3.0


def add_health_routes(web_app: web.Application, app: App) -> None:
    scrape = make_aiohttp_handler(app.metrics.registry)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"alive": True})

    async def readyz(request: web.Request) -> web.Response:
        checks = await readiness(app)
        ready = all(check["ok"] for check in checks.values())
        return web.json_response({"ready": ready, "checks": checks}, status=200 if ready else 503)

    async def metrics(request: web.Request) -> web.StreamResponse:
        services = app.services
        await app.metrics.refresh(services.database, services.budget)
        app.metrics.observe_loops(services.supervisor.statuses())
        return await scrape(request)

    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/readyz", readyz)
    web_app.router.add_get("/metrics", metrics)


async def readiness(app: App) -> dict[str, dict[str, Any]]:
    """Each check with ``ok`` and what an operator needs to see why not."""
    checks: dict[str, dict[str, Any]] = {
        "taking_updates": {"ok": app.stop_deadline is None},
        "database": await _database(app),
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


async def _database(app: App) -> dict[str, Any]:
    """Writable, and still ours: the heartbeat of the instance lock is a real write."""
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            ours = await app.lock.heartbeat()
    except (TimeoutError, aiosqlite.Error) as error:
        return {"ok": False, "error": f"not writable: {type(error).__name__}: {error}"}
    if not ours:
        return {"ok": False, "error": "another process took over the database lock"}
    return {"ok": True}


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


class HealthServer:
    """Polling mode's own little server for the health routes."""

    def __init__(self, app: App, listen: str) -> None:
        web_app = web.Application()
        add_health_routes(web_app, app)
        self._runner = web.AppRunner(web_app, access_log=None)
        self._listen = listen

    async def start(self) -> None:
        host, port = split_host_port(self._listen)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        log.info("health and metrics on http://%s/", self._listen)

    async def stop(self) -> None:
        await self._runner.cleanup()

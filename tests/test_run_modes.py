"""Both run modes end to end over loopback: webhook (the Telegram stand-in POSTs updates to the
bot's aiohttp server) and polling with its health server; one database moving between them;
``/healthz``, ``/readyz`` and ``/metrics`` following the work done."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import FUNNEL_BOT, WEBHOOK_SECRET, Person, StandIns, eventually, free_port
from tests.running import get, serving

IVAN = 100000001
MARIA = 100000002
STRANGER = 100000077


async def salebot_holds(standins: StandIns, telegram_id: int, gc_user_id: str) -> None:
    def holds() -> bool:
        client = standins.salebot.client_by_platform_id(telegram_id, FUNNEL_BOT)
        variables = standins.salebot.client_variables(client.id) if client else {}
        return variables.get("gc_user_id") == gc_user_id

    await eventually(holds)


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


async def test_webhook_mode_links_end_to_end(standins: StandIns) -> None:
    settings = standins.webhook_settings()
    async with serving(standins, settings) as app:
        hook = standins.telegram.webhook
        assert hook is not None
        assert hook["url"] == settings.webhook_url
        assert hook["secret_token"] == WEBHOOK_SECRET
        assert hook["allowed_updates"] == app.dispatcher.resolve_used_update_types()
        assert hook["drop_pending_updates"] is False

        ivan = Person(standins.telegram, IVAN)
        ivan.says("/start")
        await ivan.reply("email")
        ivan.says("ivan.petrov@example.com")
        await ivan.reply("Проверяю")
        await ivan.reply("Готово")
        await salebot_holds(standins, IVAN, "187654321")

        deliveries = standins.telegram.webhook_deliveries
        assert [d.status for d in deliveries] == [200, 200]
        # Health and metrics live on their own server, never on the public one.
        assert (await get(settings.http_listen, "/healthz")).status_code == 404
        assert (await get(settings.health_listen, "/healthz")).status_code == 200
        scraped = (await get(settings.health_listen, "/metrics")).text
        assert metric(scraped, "bot_updates_total", type="message", outcome="handled") == 2
    assert standins.telegram.webhook is not None  # kept: Telegram queues while we restart


async def test_webhook_refuses_a_wrong_or_missing_secret(standins: StandIns) -> None:
    async with serving(standins, standins.webhook_settings()) as app:

        def update(text: str) -> dict[str, Any]:
            sender = {"id": STRANGER, "is_bot": False, "first_name": "Eve"}
            chat = {"id": STRANGER, "type": "private"}
            return {
                "message": {"message_id": 1, "date": 0, "chat": chat, "from": sender, "text": text}
            }

        telegram = standins.telegram
        assert await telegram.post_to_webhook(update("/cancel"), secret="not-the-secret") == 401
        assert await telegram.post_to_webhook(update("/cancel"), secret=None) == 401
        assert await telegram.post_to_webhook(update("/start"), secret=WEBHOOK_SECRET) == 200

        # One person's updates are handled in order, so an accepted /cancel would have been
        # answered before the greeting.
        greeting = await Person(telegram, STRANGER).reply()
        assert "email" in (greeting.text or "")
        assert len(telegram.bot_messages(STRANGER)) == 1
        handled = {"type": "message", "outcome": "handled"}
        await eventually(
            lambda: app.metrics.registry.get_sample_value("bot_updates_total", handled) == 1
        )


async def test_webhook_takes_updates_while_a_lookup_is_running(standins: StandIns) -> None:
    standins.getcourse.not_ready_polls = 10_000  # the export is ready only when we say so
    # Polls far enough apart that the export budget outlasts the wait.
    settings = standins.webhook_settings(
        getcourse_poll_max_interval=0.5, getcourse_lookup_timeout=60
    )
    async with serving(standins, settings):
        ivan = Person(standins.telegram, IVAN)
        ivan.says("ivan.petrov@example.com")
        await ivan.reply("Проверяю")
        # The lookup is queued first; the worker's export is what must be building meanwhile.
        await eventually(lambda: standins.getcourse.exports_started() == 1)

        others = [Person(standins.telegram, 100000010 + n) for n in range(5)]
        for person in others:
            person.says("/start")
        for person in others:
            await person.reply("email")
        assert not any("Готово" in text for text in ivan.texts())  # still waiting on GetCourse

        standins.getcourse.complete_exports()
        await ivan.reply("Готово")


async def test_webhook_drops_pending_updates_when_told(standins: StandIns) -> None:
    ivan = Person(standins.telegram, IVAN)
    ivan.says("/start")  # while the bot is down
    settings = standins.webhook_settings(webhook_drop_pending_updates=True)
    async with serving(standins, settings):
        assert standins.telegram.webhook is not None
        assert standins.telegram.webhook["drop_pending_updates"] is True
        ivan.says("/cancel")
        await ivan.reply()
        assert len(ivan.texts()) == 1  # the /start from before was dropped


async def test_one_database_moves_between_modes_without_losing_links(
    standins: StandIns,
) -> None:
    ivan = Person(standins.telegram, IVAN)
    async with serving(standins, standins.settings()):
        ivan.says("ivan.petrov@example.com")
        await ivan.reply("Готово")
        await salebot_holds(standins, IVAN, "187654321")

    ivan.says("/start")  # sent while no one listens: delivered once the webhook is set
    async with serving(standins, standins.webhook_settings()) as app:
        card = await ivan.reply("i***@example.com")
        assert card.buttons()
        ivan.says("/email")
        await ivan.reply("Пришлите email")
        link = await app.services.links.current_link(IVAN)
        assert link is not None
        assert link.email == "ivan.petrov@example.com"

    # Back to polling: the webhook is removed, and the dialog left half-way goes on.
    async with serving(standins, standins.settings()) as app:
        assert standins.telegram.webhook is None
        ivan.says("anna@example.org")
        await ivan.reply("Готово")
        await salebot_holds(standins, IVAN, "187654322")
        link = await app.services.links.current_link(IVAN)
        assert link is not None
        assert link.email == "anna@example.org"


async def test_health_and_metrics_follow_the_work_in_polling_mode(standins: StandIns) -> None:
    listen = f"127.0.0.1:{free_port()}"
    async with serving(standins, standins.settings(health_listen=listen)) as app:
        assert (await get(listen, "/healthz")).json() == {"alive": True}
        ready = await get(listen, "/readyz")
        assert ready.status_code == 200, ready.text
        assert set(ready.json()["checks"]) == {
            "taking_updates",
            "database",
            "background",
            "getcourse",
            "salebot",
        }
        before = (await get(listen, "/metrics")).text
        assert metric(before, "bot_links") == 0
        assert metric(before, "bot_getcourse_export_budget") == app.settings.getcourse_export_budget

        ivan = Person(standins.telegram, IVAN)
        ivan.says("ivan.petrov@example.com")
        await ivan.reply("Готово")
        await salebot_holds(standins, IVAN, "187654321")
        after = (await get(listen, "/metrics")).text
        assert metric(after, "bot_updates_total", type="message", outcome="handled") == 1
        assert metric(after, "bot_update_handling_seconds_count", type="message") == 1
        assert metric(after, "bot_links") == 1
        assert metric(after, "bot_getcourse_export_requests") == 2  # start + one poll
        calls = {"service": "getcourse", "operation": "find_user", "outcome": "ok"}
        assert metric(after, "bot_external_calls_total", **calls) == 1
        saved = {"service": "salebot", "operation": "save_variables", "outcome": "ok"}
        assert metric(after, "bot_external_calls_total", **saved) == 1
        assert metric(after, "bot_outbox_pending") == 0

        # Salebot goes down: the next write waits, and readiness says why.
        standins.salebot.set_down(True)
        maria = Person(standins.telegram, MARIA)
        maria.says("maria.sidorova@example.com")
        await maria.reply("Готово")

        async def salebot_failed() -> bool:
            checks = (await get(listen, "/readyz")).json()["checks"]
            return bool(checks["salebot"]["last_failure_cause"] == "unavailable")

        await eventually(salebot_failed)
        down = await get(listen, "/readyz")
        assert down.status_code == 503
        assert down.json()["checks"]["salebot"]["ok"] is False
        assert down.json()["checks"]["getcourse"]["ok"] is True
        waiting = (await get(listen, "/metrics")).text
        assert metric(waiting, "bot_outbox_pending") == 1
        assert metric(waiting, "bot_outbox_oldest_pending_age_seconds") > 0
        failed = {"service": "salebot", "outcome": "unavailable"}
        assert metric(waiting, "bot_external_calls_total", **failed) >= 1

        standins.salebot.set_down(False)
        await salebot_holds(standins, MARIA, "187654323")
        await eventually(lambda: _ready(listen))
        assert metric((await get(listen, "/metrics")).text, "bot_outbox_pending") == 0

        # A dead outbox worker is not ready either.
        [outbox] = [task for task in asyncio.all_tasks() if task.get_name() == "outbox"]
        outbox.cancel()
        await eventually(outbox.done)
        dead = await get(listen, "/readyz")
        assert dead.status_code == 503
        background = dead.json()["checks"]["background"]
        assert background["ok"] is False
        assert background["loops"]["outbox"]["state"] == "stopped"
        assert background["loops"]["queued_lookups"]["ok"] is True


async def _ready(listen: str) -> bool:
    return (await get(listen, "/readyz")).status_code == 200


async def test_readiness_fails_when_getcourse_fails(standins: StandIns) -> None:
    listen = f"127.0.0.1:{free_port()}"
    settings = standins.settings(health_listen=listen)
    async with serving(standins, settings):
        standins.getcourse.fail_next("users", error_code=901)  # the key was revoked
        ivan = Person(standins.telegram, IVAN)
        ivan.says("ivan.petrov@example.com")
        await ivan.reply("Сейчас не получается проверить")
        ready = await get(listen, "/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["getcourse"]["last_failure_cause"] == "config_error"


async def test_webhook_mode_can_serve_health_on_a_loopback_port_of_its_own(
    standins: StandIns,
) -> None:
    health = f"127.0.0.1:{free_port()}"
    settings = standins.webhook_settings(health_listen=health)
    async with serving(standins, settings):
        ivan = Person(standins.telegram, IVAN)
        ivan.says("/start")
        await ivan.reply("email")  # the webhook works as before
        assert (await get(health, "/healthz")).json() == {"alive": True}
        assert (await get(health, "/readyz")).status_code == 200
        scraped = (await get(health, "/metrics")).text
        assert metric(scraped, "bot_updates_total", type="message", outcome="handled") == 1
        # Not beside the webhook any more, where Telegram (and anyone) can reach them.
        for path in ("/healthz", "/readyz", "/metrics"):
            assert (await get(settings.http_listen, path)).status_code == 404


async def test_readiness_writes_to_the_database_at_most_once_a_second(
    standins: StandIns,
) -> None:
    listen = f"127.0.0.1:{free_port()}"
    async with serving(standins, standins.settings(health_listen=listen)) as app:

        async def heartbeat() -> float:
            row = await app.services.database.fetchone("SELECT heartbeat_at FROM instance_lock")
            assert row is not None
            return float(row[0])

        async with httpx.AsyncClient(base_url=f"http://{listen}", timeout=5) as http:
            assert (await http.get("/readyz")).status_code == 200
            written = {await heartbeat()}
            started = time.monotonic()
            for _ in range(30):  # a probe storm
                assert (await http.get("/readyz")).status_code == 200
                written.add(await heartbeat())
            seconds = time.monotonic() - started
            # One write per started second at most (a busy machine may stretch the storm).
            assert len(written) - 1 <= math.floor(seconds) + 1

            async def written_again() -> bool:
                await http.get("/readyz")
                return await heartbeat() > max(written)

            await eventually(written_again)  # a probe after the second checks the database again

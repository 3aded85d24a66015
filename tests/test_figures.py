"""/stats, /health and /metrics count from one place: for the same moment they show the same
links, Salebot writes, export budget and directory size."""

from __future__ import annotations

from tests.conftest import Person, StandIns
from tests.running import get, serving
from tests.test_run_modes import metric

IVAN, MARIA = 100000001, 100000002


async def test_stats_health_and_metrics_agree(standins: StandIns) -> None:
    settings = standins.settings()
    async with serving(standins, settings) as app:
        ivan = Person(standins.telegram, IVAN)
        ivan.says("ivan.petrov@example.com")
        await ivan.reply("Готово")
        standins.salebot.set_down(True)  # Maria's write stays waiting
        maria = Person(standins.telegram, MARIA)
        maria.says("maria.sidorova@example.com")
        await maria.reply("Готово")

        console = app.services.operators.report
        stats, health = await console.stats(), await console.health()
        scraped = (await get(settings.health_listen, "/metrics")).text

    assert stats.linked_now == 2 == metric(scraped, "bot_links")
    assert stats.pending == health.pending == metric(scraped, "bot_outbox_pending") >= 1
    assert stats.failed == health.failed == 0
    assert (
        stats.budget_used == health.budget_used == metric(scraped, "bot_getcourse_export_requests")
    )
    assert stats.budget_used > 0
    assert (
        stats.budget_limit == health.budget_limit == metric(scraped, "bot_getcourse_export_budget")
    )
    assert (
        stats.directory_users
        == health.directory.users
        == metric(scraped, "bot_getcourse_directory_users")
    )
    assert stats.directory_users >= 2

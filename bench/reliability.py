"""200 people link at once while Salebot fails 30% of requests.

Prints links stored, links delivered to Salebot (equal once it settles), GetCourse export
requests against the budget, and the time to settle. Everything runs on loopback stand-ins:

    python bench/reliability.py [--people 200] [--failure-rate 0.3]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time

from machine import StealMeter, header

from bot.app import App
from sandbox.demo import FUNNEL_BOT
from sandbox.getcourse import GetCourseUserRecord
from sandbox.telegram import TelegramStandIn
from sandbox.world import stand_in_world

FIRST_USER = 300_000_000
BUDGET = 60
SETTLE_DEADLINE = 300.0
DEPARTURES = (
    "GetCourse exports are ready at once and polled after 10 ms, then every 50 ms at most; "
    "GETCOURSE_LOOKUP_TIMEOUT=60; GETCOURSE_LOOKUPS_PER_HOUR=10000; no directory syncs "
    "(GETCOURSE_FULL_SYNC_HOURS=0, GETCOURSE_INCREMENTAL_SYNC_MINUTES=0: this measures live "
    "lookups against the budget); Salebot retries after 50 ms, at most 1 s apart; "
    "GETCOURSE_EXPORT_BUDGET=60 and everything else as by default"
)


async def run(people: int, failure_rate: float) -> None:
    async with stand_in_world(demo_data=False) as world:
        telegram, getcourse, salebot = world.telegram, world.getcourse, world.salebot
        for n in range(people):
            getcourse.add_user(GetCourseUserRecord(id=500_000 + n, email=f"student{n}@example.com"))
            salebot.add_client(FIRST_USER + n, group=FUNNEL_BOT)
        salebot.fail_randomly(failure_rate, seed=7)
        meter = StealMeter()
        settings = world.settings(
            getcourse_export_budget=BUDGET,
            getcourse_poll_first_delay=0.01,
            getcourse_poll_max_interval=0.05,
            getcourse_lookup_timeout=60,
            getcourse_lookups_per_hour=10_000,
            # No directory syncs: this measures live lookups against the budget.
            getcourse_full_sync_hours=0,
            getcourse_incremental_sync_minutes=0,
            salebot_retry_first_delay=0.05,
            salebot_retry_max_delay=1.0,
        )
        logging.basicConfig(level=logging.ERROR)
        async with App.running(settings) as app:
            polling = asyncio.create_task(app.run_polling(handle_signals=False))
            await telegram.wait_for_poll()
            started = time.perf_counter()
            for n in range(people):
                telegram.send_message(FIRST_USER + n, f"student{n}@example.com")
            answered = await all_answered(telegram, people)
            answered_at = time.perf_counter() - started
            settled_at = await settled(app, started)
            stored = await count(app, "SELECT COUNT(*) FROM links")
            delivered = await count(
                app, "SELECT COUNT(DISTINCT telegram_id) FROM outbox WHERE state='delivered'"
            )
            await app.dispatcher.stop_polling()
            await polling

    salebot_calls = len(salebot.requests)
    failed_calls = sum(1 for r in salebot.requests if r.status == 500)
    print(header("bench/reliability.py"))
    print(f"Departures from the defaults: {DEPARTURES}.")
    print(f"CPU steal {meter.share()}\n")
    print(f"people linking at once          {people}")
    print(f"Salebot failure rate            {failure_rate:.0%}")
    print(f"answered (linked / try later)   {answered['linked']} / {answered['later']}")
    print(f"links stored                    {stored}")
    print(f"links delivered to Salebot      {delivered}")
    print(f"Salebot requests (failed)       {salebot_calls} ({failed_calls})")
    print(
        f"GetCourse export requests       {getcourse.export_requests_in_window()} "
        f"(bot budget {BUDGET}, school limit 100)"
    )
    print(f"time until everyone answered    {answered_at:.2f} s")
    print(f"time until Salebot settled      {settled_at:.2f} s")


async def all_answered(telegram: TelegramStandIn, people: int) -> dict[str, int]:
    """Wait until every person got the result of their lookup."""
    tally = {"linked": 0, "later": 0}
    for n in range(people):
        message = await telegram.wait_for_message(
            FIRST_USER + n,
            lambda m: "Готово" in (m.text or "") or "не получается" in (m.text or ""),
            timeout=SETTLE_DEADLINE,
        )
        tally["linked" if "Готово" in (message.text or "") else "later"] += 1
    return tally


async def settled(app: App, started: float) -> float:
    deadline = time.perf_counter() + SETTLE_DEADLINE
    while time.perf_counter() < deadline:
        if await count(app, "SELECT COUNT(*) FROM outbox WHERE state = 'pending'") == 0:
            return time.perf_counter() - started
        await asyncio.sleep(0.05)
    raise SystemExit("Salebot writes did not settle within the deadline")


async def count(app: App, sql: str) -> int:
    row = await app.services.database.fetchone(sql)
    return int(row[0]) if row else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--failure-rate", type=float, default=0.3)
    args = parser.parse_args()
    asyncio.run(run(args.people, args.failure_rate))


if __name__ == "__main__":
    main()

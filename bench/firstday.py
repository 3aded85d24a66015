"""A school's first day: a fresh install (empty database) of the bot at a school of ``--users``
users who registered over the last two years, with people writing from the moment it starts.
Every scenario runs twice in one go, side by side: against this tree, and against the baseline
commit (``--baseline``, default ``5c00ed0``, the strategy before issue 11), whose ``bot``,
``handlers``, ``services`` and ``sandbox`` are unpacked with ``git archive`` into a temporary
folder; this same script then runs as a child process with ``PYTHONPATH`` pointing there (the
child checks that it imported the baseline, not this tree). Same seed, same stand-ins, same
settings for both.

    python bench/firstday.py [--users 10000] [--scale 10] [--baseline 5c00ed0]

Settings are the defaults (``GETCOURSE_EXPORT_BUDGET=60``, ``GETCOURSE_SYNC_RESERVE=20``,
``GETCOURSE_SYNC_SINCE=2012-01-01``, 90-day first window, full sync every 24 h and incremental
every 30 min, both due at start, lookups paced, ``GETCOURSE_COALESCE_SECONDS=15``). Departures:
the GetCourse stand-in takes ``EXPORT_SECONDS`` (30 s) to build any export, and every duration
(arrivals, export build time, poll delays, the lookup timeout, the gather window, the queued
notice, the queue's patience, the sync schedule and the wait before a paused sync resumes, the
2-hour window of the bot's budget ledger, of its pace and of the stand-in's school limit) is
divided by ``--scale`` and shown scaled back. Work on the CPU (reading exports, SQLite, the
stand-ins) is not scaled: it weighs ``--scale`` times more in the figures than in real life.

Scenarios:
- ``sync``: nobody writes; the first full sync alone.
- ``lone recent`` / ``lone old``: one student writes 30 s after the start; registered 3 days ago
  (the likeliest first-day writer) or about a year ago.
- ``fifty``: 50 people write within the first 2 minutes (45 of them GetCourse users picked at
  random, 5 unknown emails).
- ``launch``: 500 people over 10 minutes, each registered on GetCourse just before writing, once
  the directory has synced (the sync ran beforehand with the budget lifted and its requests
  cleared from both ledgers: what is counted is the launch). This tree runs it a second time
  with ``GETCOURSE_PACE_FREE_SHARE=0`` (paced from the first request, as the baseline is).
- ``launch announced``: the same 500 people, but the school's registration process tells the bot
  of each of them (``GETCOURSE_EVENTS_SECRET`` set, a POST to ``/getcourse/events`` on the bot's
  ``HTTP_LISTEN`` with ``event=registered``, ``user_id`` and ``email``) the moment they register,
  just before they write. This tree only: the baseline has no such endpoint (its column says
  "-").
Printed per scenario and strategy: time to the first complete full sync and the export requests
spent until then (lookups' included), email → answer p50/p95/max, answers by kind, export
requests in total and in the busiest 2 hours, and whether the budget was ever exceeded."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import logging
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from io import BytesIO
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from answers import ANSWERS, percentile, watch_answers

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = ("sync", "lone recent", "lone old", "fifty", "launch", "launch announced")
ANNOUNCED = "launch announced"  # this tree only: the baseline has no GetCourse events endpoint
EVENTS_SECRET = "bench-events-secret-0123456789"
EXPORT_SECONDS = 30.0
WINDOW_SECONDS = 7200.0
FIRST_PERSON = 500_000_000
FIRST_USER = 300_000_000


# ----- the child: one scenario against whichever code PYTHONPATH gives ---------------------------


def school(users: int, seed: int) -> list[Any]:
    from sandbox.getcourse import GetCourseUserRecord

    now = datetime.now().replace(microsecond=0)
    generator = random.Random(seed)
    return [
        GetCourseUserRecord(
            id=FIRST_USER + n,
            email=f"student{n}@example.com",
            created_at=now - timedelta(seconds=generator.randrange(730 * 86400)),
        )
        for n in range(users)
    ]


def arrivals(scenario: str, records: list[Any], seed: int) -> list[tuple[float, str, Any]]:
    """(seconds after start, email, user to add to GetCourse just before or None)."""
    from sandbox.getcourse import GetCourseUserRecord

    generator = random.Random(seed + 1)
    now = datetime.now().replace(microsecond=0)
    if scenario.startswith("lone"):
        days = 3 if scenario == "lone recent" else 365
        wanted = now - timedelta(days=days)
        record = min(records, key=lambda r: abs((r.created - wanted).total_seconds()))
        return [(30.0, record.email, None)]
    if scenario == "fifty":
        known = generator.sample(records, 45)
        emails = [r.email for r in known] + [f"stranger{n}@example.com" for n in range(5)]
        generator.shuffle(emails)
        return sorted((generator.uniform(0, 120), email, None) for email in emails)
    if scenario.startswith("launch"):
        return [
            (
                n * 600 / 500,
                f"new{n}@example.com",
                GetCourseUserRecord(id=FIRST_USER - 1 - n, email=f"new{n}@example.com"),
            )
            for n in range(500)
        ]
    return []


def busiest_window(times: list[float], window: float) -> int:
    ordered, best, start = sorted(times), 0, 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


@contextlib.asynccontextmanager
async def stand_ins(scale: float) -> AsyncIterator[Any]:
    """Empty stand-ins (GetCourse building each export in ``EXPORT_SECONDS``, its school limit
    on scaled time) with ``settings(**overrides)`` pointing the bot at them: this tree's stand-in
    world, or, in a tree from before it (the default baseline), the same from what that tree's
    sandbox CLI offered."""
    try:
        from sandbox.world import stand_in_world
    except ModuleNotFoundError:
        starting = baseline_stand_ins(scale)
    else:
        starting = stand_in_world(demo_data=False, export_latency=EXPORT_SECONDS / scale)
    async with starting as world:
        world.getcourse.window_seconds = WINDOW_SECONDS / scale
        yield world


def budget_and_sync_modules() -> tuple[Any, Any]:
    """The export ledger's and the directory sync's modules, whose timings the child scales:
    in this tree services/ is grouped by context, in the baseline it was flat."""
    try:
        from services.getcourse import budget, directory_sync
    except ImportError:
        from services import directory_sync
        from services import export_budget as budget
    return budget, directory_sync


@contextlib.asynccontextmanager
async def baseline_stand_ins(scale: float) -> AsyncIterator[Any]:
    """The stand-ins of a tree from before ``sandbox/world.py``, with its sandbox CLI's
    credentials and settings."""
    from bot.sandbox_cli import FUNNEL_BOT, GETCOURSE_KEY, SALEBOT_KEY, TOKEN, stand_in_settings
    from sandbox.getcourse import GetCourseStandIn
    from sandbox.salebot import SalebotStandIn
    from sandbox.telegram import TelegramStandIn

    servers = SimpleNamespace(
        telegram=TelegramStandIn(token=TOKEN),
        getcourse=GetCourseStandIn(api_key=GETCOURSE_KEY, export_latency=EXPORT_SECONDS / scale),
        salebot=SalebotStandIn(api_key=SALEBOT_KEY, telegram_bots=[FUNNEL_BOT]),
    )
    async with contextlib.AsyncExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        for server in (servers.telegram, servers.getcourse, servers.salebot):
            await server.start()
            stack.push_async_callback(server.stop)
        servers.settings = functools.partial(
            stand_in_settings,
            servers.telegram,
            servers.getcourse,
            servers.salebot,
            folder / "bench.sqlite3",
        )
        yield servers


async def child(
    scenario: str, users: int, scale: float, seed: int, free_share: float | None
) -> dict[str, Any]:
    from bot.app import App

    export_budget, directory_sync = budget_and_sync_modules()
    SyncKind = directory_sync.SyncKind

    logging.basicConfig(level=logging.CRITICAL)
    # The ledger's 2-hour window and the wait before a paused sync resumes, on scaled time too.
    export_budget.WINDOW_SECONDS = round(WINDOW_SECONDS / scale)
    directory_sync.RESUME_AFTER = directory_sync.RESUME_AFTER / scale
    records = school(users, seed)
    plan = arrivals(scenario, records, seed)
    sent: dict[int, float] = {}
    answers: dict[int, Any] = {}
    synced_after: float | None = None
    sync_requests: int | None = None
    async with stand_ins(scale) as world:
        telegram, getcourse = world.telegram, world.getcourse
        getcourse.users = records  # direct: add_user checks duplicates one by one
        for n in range(len(plan)):
            world.salebot.add_client(FIRST_PERSON + n)
        settings = world.settings(
            getcourse_poll_first_delay=10 / scale,
            getcourse_poll_max_interval=30 / scale,
            getcourse_lookup_timeout=240 / scale,
            getcourse_coalesce_seconds=15 / scale,
            getcourse_queued_notice_seconds=20 / scale,
            getcourse_queue_patience_minutes=30 / scale,
            getcourse_full_sync_hours=24 / scale,
            getcourse_incremental_sync_minutes=30 / scale,
            # Measures lookups and writes; the proof is a human step (the baseline ignores it).
            ownership_proof="off",
            **({} if free_share is None else {"getcourse_pace_free_share": free_share}),
            **(events_settings() if scenario == ANNOUNCED else {}),
        )
        launch = scenario.startswith("launch")
        if launch:  # synced beforehand; the launch is what is measured
            await presync(settings, getcourse)
        async with App.running(settings) as app, announcing(app, scenario == ANNOUNCED) as announce:
            # The pace's 2-hour window on scaled time (its other settings as configured).
            app.services.lookups.pace.seconds_per_request /= scale
            start = time.perf_counter()

            async def first_sync() -> tuple[float, int]:
                while True:  # polled: the bot has no event for it, and both trees must run
                    if await app.services.sync.last_done(SyncKind.FULL):
                        requests = len([r for r in getcourse.requests if r.counted])
                        return (time.perf_counter() - start) * scale, requests
                    await asyncio.sleep(0.05)

            syncing = None if launch else asyncio.create_task(first_sync())
            polling = asyncio.create_task(app.run_polling(handle_signals=False))
            watcher = asyncio.create_task(watch_answers(telegram, sent, answers, len(plan)))
            for n, (at, email, record) in enumerate(plan):
                await asyncio.sleep(max(0.0, start + at / scale - time.perf_counter()))
                if record is not None:
                    getcourse.users.append(record)
                    await announce(record)
                telegram.send_message(FIRST_PERSON + n, email)
                sent[FIRST_PERSON + n] = time.perf_counter()
            # Until everyone is answered and the first full sync is done, within 60 minutes.
            deadline = start + 3600 / scale
            while time.perf_counter() < deadline:
                if len(answers) == len(plan) and (syncing is None or syncing.done()):
                    break
                await asyncio.sleep(0.05)
            if syncing is not None and syncing.done():
                synced_after, sync_requests = syncing.result()
            elif syncing is not None:
                syncing.cancel()
            watcher.cancel()
            await app.dispatcher.stop_polling()
            await polling
    counted = [r.at for r in getcourse.requests if r.counted]
    began = getcourse.requests[0].at if getcourse.requests else 0.0
    trace = [
        f"{(r.at - began) * scale:7.1f}s {r.endpoint} {r.params} {r.error_code or ''}"
        for r in getcourse.requests
    ]
    waits = sorted(seconds * scale for _, seconds in answers.values())
    kinds = [kind for kind, _ in answers.values()]
    return {
        "synced_after": synced_after,
        "sync_requests": sync_requests,
        "waits": waits,
        "people": len(plan),
        "kinds": {label: kinds.count(label) for label in ANSWERS.values()},
        "requests": len(counted),
        "busiest_2h": busiest_window(counted, WINDOW_SECONDS / scale),
        "refused_903": len([r for r in getcourse.requests if r.error_code == 903]),
        "trace": trace,
    }


def events_settings() -> dict[str, Any]:
    from sandbox.world import free_port

    return {"getcourse_events_secret": EVENTS_SECRET, "http_listen": f"127.0.0.1:{free_port()}"}


@contextlib.asynccontextmanager
async def announcing(app: Any, on: bool) -> AsyncIterator[Any]:
    """``announce(record)``: what the school's process "on user registration → call URL" does
    (the bot's public listener serving ``/getcourse/events``); does nothing unless ``on``."""
    if not on:

        async def quiet(record: Any) -> None:
            pass

        yield quiet
        return
    import httpx

    from bot.public_http import PublicServer

    public = PublicServer(app)
    await public.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://{app.settings.http_listen}") as http:

            async def announce(record: Any) -> None:
                params = {"secret": EVENTS_SECRET, "event": "registered"}
                params |= {"user_id": str(record.id), "email": record.email}
                answer = await http.post("/getcourse/events", data=params)
                answer.raise_for_status()  # a refused event would void the scenario

            yield announce
    finally:
        await public.stop()


async def presync(settings: Any, getcourse: Any) -> None:
    """A directory synced yesterday: a full sync with the budget lifted, then both ledgers
    cleared."""
    from bot.app import create_services

    SyncKind = budget_and_sync_modules()[1].SyncKind

    services = await create_services(settings)
    try:
        services.budget.limit = 10_000
        getcourse.budget = 10_000
        while not (await services.sync.run(SyncKind.FULL)).complete:
            pass
        async with services.database.transaction() as tx:
            await tx.execute("DELETE FROM getcourse_export_requests")
    finally:
        await services.close()
    getcourse.budget = 100
    getcourse.requests.clear()
    window, getcourse.window_seconds = getcourse.window_seconds, 0.0
    getcourse.export_requests_in_window()  # the stand-in's school window forgets them too
    getcourse.window_seconds = window


# ----- the parent: both strategies, side by side ----------------------------------------------


def baseline_tree(commit: str, folder: Path) -> Path:
    archive = subprocess.run(
        [
            "git",
            "-C",
            str(REPO),
            "archive",
            "--format=tar",
            commit,
            "bot",
            "handlers",
            "services",
            "sandbox",
        ],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def run_child(
    code: Path, scenario: str, args: argparse.Namespace, free_share: float | None = None
) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(code)}
    command = [sys.executable, __file__, "--child", scenario, "--users", str(args.users)]
    command += ["--scale", str(args.scale), "--seed", str(args.seed)]
    if free_share is not None:
        command += ["--free-share", str(free_share)]
    output = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    if Path(result["code"]).resolve() != code.resolve():
        raise SystemExit(f"the child imported {result['code']}, not {code}")
    return result


def rows_of(scenario: str, result: dict[str, Any]) -> dict[str, str]:
    waits = result["waits"]
    synced = result["synced_after"]
    unanswered = result["people"] - len(waits)
    if scenario.startswith("launch"):
        synced_text = "beforehand (not counted)"
    else:
        synced_text = "not within 60 min" if synced is None else f"{synced:.0f} s"
    return {
        "first full sync done after": synced_text,
        "export requests until then": "-"
        if result["sync_requests"] is None
        else str(result["sync_requests"]),
        "email → answer p50 / p95 / max": "-"
        if not waits
        else f"{percentile(waits, 0.5):.0f} / {percentile(waits, 0.95):.0f} / {waits[-1]:.0f} s",
        "linked / not found / try later": " / ".join(str(v) for v in result["kinds"].values())
        + (f" ({unanswered} unanswered)" if unanswered else ""),
        "export requests (busiest 2 h)": f"{result['requests']} ({result['busiest_2h']})",
        "budget exceeded (903 answers)": "no" if not result["refused_903"] else "YES",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--scale", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--baseline", default="5c00ed0")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--trace", action="store_true", help="print this tree's requests")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--free-share", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import services

        result = asyncio.run(child(args.child, args.users, args.scale, args.seed, args.free_share))
        result["code"] = str(Path(services.__file__).resolve().parent.parent)
        print(json.dumps(result))
        return
    print(
        f"Fresh install, {args.users:,} users registered over the last two years; export build "
        f"{EXPORT_SECONDS:.0f} s; durations scaled down ×{args.scale:g}, shown scaled back; "
        f"baseline {args.baseline}"
    )
    with tempfile.TemporaryDirectory() as folder:
        baseline = baseline_tree(args.baseline, Path(folder))
        for scenario in args.scenarios.split(","):
            current = run_child(REPO, scenario, args)
            now = rows_of(scenario, current)
            if scenario == ANNOUNCED:
                before = dict.fromkeys(now, "-")
            else:
                before = rows_of(scenario, run_child(baseline, scenario, args))
            # A launch also with the pace from the first request, as before (a setting away).
            paced = {}
            if scenario == "launch":
                paced = rows_of(scenario, run_child(REPO, scenario, args, 0.0))
            print(f"\n{scenario}")
            width = max(len(name) for name in now)
            heads = [f"baseline {args.baseline}", "this tree"]
            heads += ["this tree, GETCOURSE_PACE_FREE_SHARE=0"] if paced else []
            print(f"  {'':{width}}  " + "  ".join(f"{head:32}" for head in heads))
            for name in now:
                cells = [before[name], now[name]] + ([paced[name]] if paced else [])
                print(f"  {name:{width}}  " + "  ".join(f"{cell:32}" for cell in cells))
            if args.trace:
                print("\n".join("    " + line for line in current["trace"]))


if __name__ == "__main__":
    main()

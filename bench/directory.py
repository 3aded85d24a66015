"""GetCourse at school scale: a naive bot (one export per email) against the local directory,
directory hits while a big sync runs, lookups in large directories, and full syncs of large
accounts. Settings are the defaults except where a part prints a departure.

    python bench/directory.py [--parts 1,2,3,4] [--people 500] [--scale 20] [--coalesce 15]
                              [--idle-hits 200] [--busy-hits 5000] [--busy-users 1000000]
                              [--rows 10000,100000,1000000] [--sync 100000,1000000]

1. Launch day: ``--people`` people, none of them in the directory yet (they registered after
   the last sync), send their email spread evenly over a simulated 10 minutes. The GetCourse
   stand-in takes 30 s to build an export; every duration (arrivals, export latency, poll
   delays, the lookup timeout, the gathering of misses, the queued notice, the pace's window)
   is divided by ``--scale``. The naive bot has no budget of its own (GetCourse's limit stops
   it). Printed: the export-API requests used, p50/p95 from the email to the answer (in real
   seconds, i.e. scaled back), and how the people were answered, through the Telegram stand-in.
2. Directory hits, end to end over loopback, people one after another whose users are in the
   directory: ``--idle-hits`` on the idle bot, then as many as fit (up to ``--busy-hits``) while
   the same bot runs a full sync of ``--busy-users`` users served by a stand-in in a child
   process; p50/p95/max, and how far the sync got.
3. ``DirectoryRepository.by_email`` at each ``--rows`` size (synthetic rows): p50/p99.
4. ``python -m bot sync --full`` (one run, default budget and reserve) as a child process
   against a stand-in holding each ``--sync`` number of users: export requests, finished or
   paused, rows stored, wall time and the child's peak RSS."""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from answers import ANSWERS, answer_kind, percentile, watch_answers
from machine import StealMeter, header

from bot.app import App
from bot.settings import Settings
from sandbox.demo import GETCOURSE_KEY
from sandbox.getcourse import GetCourseStandIn, GetCourseUserRecord
from sandbox.salebot import SalebotStandIn
from sandbox.telegram import TelegramStandIn
from sandbox.world import StandInWorld, stand_in_world
from services.getcourse.budget import WINDOW_SECONDS, ExportBudget
from services.getcourse.directory import MISS, DirectAnswer
from services.getcourse.directory_sync import SyncKind
from services.getcourse.exports import GetCourseClient, PollSchedule
from services.linking.flow import LinkService
from services.linking.lookup_gate import LookupGate, LookupLimits
from services.linking.lookup_queue import LookupPace
from services.models import GetCourseUser
from services.storage.database import Database
from services.storage.directory import DirectoryRepository

FIRST_USER = 400_000_000
OLD_USERS = 2000
LAUNCH_MINUTES = 10
EXPORT_SECONDS = 30.0
SINCE = datetime(2020, 1, 1)


def settings_for(world: StandInWorld, **values: Any) -> Settings:
    return world.settings(
        getcourse_sync_since=SINCE.date(),
        getcourse_sync_window_days=400,
        getcourse_full_sync_hours=0,
        getcourse_incremental_sync_minutes=0,
        getcourse_lookups_per_hour=1_000_000,
        link_attempts_per_hour=1000,
        **values,
    )


def old_users(count: int, first_id: int = 1_000_000) -> list[GetCourseUserRecord]:
    step = timedelta(days=1500) / count
    return [
        GetCourseUserRecord(
            id=first_id + n,
            email=f"old{n}@example.com",
            first_name="Old",
            phone=f"+7900{n:07d}",
            created_at=SINCE + step * n,
            custom={"Тариф": "Базовый"},
        )
        for n in range(count)
    ]


def know_people(salebot: SalebotStandIn, people: int) -> None:
    """A Salebot client for each person (they reached the school's funnel bot before the
    support bot), so every link is one successful write, as in production."""
    for n in range(people):
        salebot.add_client(FIRST_USER + n)


async def answer_of(telegram: TelegramStandIn, user_id: int, sent: float) -> tuple[str, float]:
    message = await telegram.wait_for_message(
        user_id, lambda m: answer_kind(m.text) is not None, timeout=1200
    )
    return answer_kind(message.text) or "", time.perf_counter() - sent


# ----- 1 and 2: through the bot ----------------------------------------------------------------


class OneExportPerEmail:
    """The plain strategy, as before the directory: every email asked live, one export each."""

    answers_directly = True

    def __init__(self, getcourse: GetCourseClient) -> None:
        self._getcourse = getcourse

    async def local_answer(self, email: str) -> DirectAnswer:
        return MISS

    async def direct_answer(self, email: str) -> DirectAnswer:
        return await self._getcourse.find_user_by_email(email)  # its errors: "try later"


def naive_bot(app: App, settings: Settings, http: httpx.AsyncClient) -> LinkService:
    """A naive bot: one export per email, answered in the dialog, and no budget of its own (its
    ledger never refuses; only GetCourse's limit of 100 requests per 2 hours, answered 903,
    stops it). It keeps what GetCourse itself imposes: one export at a time, polled."""
    services = app.services
    getcourse = GetCourseClient(
        http,
        GETCOURSE_KEY,
        ExportBudget(services.database, limit=sys.maxsize),
        PollSchedule(
            first_delay=settings.getcourse_poll_first_delay,
            max_interval=settings.getcourse_poll_max_interval,
            give_up_after=settings.getcourse_lookup_timeout,
        ),
    )
    return LinkService(
        services.database,
        OneExportPerEmail(getcourse),
        on_enqueued=services.outbox.wake,
        on_queued=services.lookups.wake,
        gate=LookupGate(services.database, LookupLimits(1000, 1_000_000)),
    )


async def launch(strategy: str, people: int, scale: float, coalesce: float) -> dict[str, Any]:
    async with stand_in_world(demo_data=False, export_latency=EXPORT_SECONDS / scale) as world:
        telegram, getcourse = world.telegram, world.getcourse
        getcourse.users = old_users(OLD_USERS)  # direct: add_user checks duplicates one by one
        know_people(world.salebot, people)
        settings = settings_for(
            world,
            getcourse_poll_first_delay=10 / scale,
            getcourse_poll_max_interval=30 / scale,
            getcourse_lookup_timeout=240 / scale,
            getcourse_coalesce_seconds=coalesce / scale,
            getcourse_queued_notice_seconds=20 / scale,
            getcourse_queue_patience_minutes=30 / scale,
        )
        async with App.running(settings) as app:
            await app.services.sync.run(SyncKind.FULL)  # yesterday's directory
            # The pace refills the budget over 2 hours: scaled like every other duration.
            app.services.lookups.pace = LookupPace(
                settings.getcourse_export_budget, WINDOW_SECONDS / scale
            )
            naive_http = httpx.AsyncClient(base_url=getcourse.base_url, timeout=30.0)
            if strategy == "naive":
                app.dispatcher["link_service"] = naive_bot(app, settings, naive_http)
            used_before = len([r for r in getcourse.requests if r.counted])
            today = datetime.now().replace(microsecond=0)
            polling = asyncio.create_task(app.run_polling(handle_signals=False))
            await telegram.wait_for_poll()
            gap = LAUNCH_MINUTES * 60 / scale / people
            sent: dict[int, float] = {}
            answered: dict[int, tuple[str, float]] = {}
            collecting = asyncio.create_task(watch_answers(telegram, sent, answered, people))
            start = time.perf_counter()
            for n in range(people):
                await asyncio.sleep(max(0.0, start + n * gap - time.perf_counter()))
                # Registered on GetCourse just now, then straight to the bot.
                getcourse.users.append(
                    GetCourseUserRecord(
                        id=2_000_000 + n, email=f"new{n}@example.com", created_at=today
                    )
                )
                telegram.send_message(FIRST_USER + n, f"new{n}@example.com")
                sent[FIRST_USER + n] = time.perf_counter()
            await collecting
            answers = list(answered.values())
            await app.dispatcher.stop_polling()
            await polling
            await naive_http.aclose()
    latencies = [seconds * scale for _, seconds in answers]
    tally = {label: sum(1 for kind, _ in answers if kind == label) for label in ANSWERS.values()}
    return {
        "GetCourse export requests": len([r for r in getcourse.requests if r.counted])
        - used_before,
        "requests GetCourse refused (903)": len(
            [r for r in getcourse.requests if r.error_code == 903]
        ),
        "p50 email → answer, s": f"{percentile(latencies, 0.5):.1f}",
        "p95 email → answer, s": f"{percentile(latencies, 0.95):.1f}",
        "linked / not found / try later": " / ".join(str(tally[v]) for v in ANSWERS.values()),
    }


class RemoteGetCourse:
    """The GetCourse stand-in holding ``users`` users, served by a child process: building and
    serialising a window of 50,000 rows is the stand-in's CPU, not the bot's, and must not
    stall the event loop the bot shares with the benchmark."""

    def __init__(self, users: int) -> None:
        self.users = users
        self.base_url = ""
        self._process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> RemoteGetCourse:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--serve-getcourse",
            str(self.users),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self._process.stdout is not None
        self.base_url = (await self._process.stdout.readline()).decode().strip()
        if not self.base_url:
            raise SystemExit("the GetCourse stand-in process did not start")
        return self

    async def counted_requests(self) -> int:
        """Export-API requests the stand-in counted against the school's limit so far."""
        assert self._process is not None
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.write(b"count\n")
        await self._process.stdin.drain()
        return int(await self._process.stdout.readline())

    async def __aexit__(self, *exc: object) -> None:
        assert self._process is not None
        assert self._process.stdin is not None
        self._process.stdin.close()
        await self._process.wait()


async def serve_getcourse(users: int) -> None:
    """The child side of ``RemoteGetCourse``: prints the URL, answers "count" lines on stdin
    with the counted export requests, stops at the end of stdin."""
    getcourse = GetCourseStandIn(api_key=GETCOURSE_KEY)
    getcourse.users = old_users(users)
    print(await getcourse.start(), flush=True)
    loop = asyncio.get_running_loop()
    while await loop.run_in_executor(None, sys.stdin.readline):
        print(len([r for r in getcourse.requests if r.counted]), flush=True)
    await getcourse.stop()


def hit_users(users: int, people: int) -> list[GetCourseUser]:
    """Directory entries of ``people`` of the stand-in's ``old_users(users)`` (spread over the
    account), as a sync would have stored them."""
    step = max(1, users // people)
    return [
        GetCourseUser(id=str(1_000_000 + n * step), email=f"old{n * step}@example.com")
        for n in range(people)
    ]


async def send_hits(
    telegram: TelegramStandIn,
    people: list[GetCourseUser],
    first: int,
    until: asyncio.Task[Any] | None = None,
) -> list[float]:
    """People ``first``, ``first + 1``... write their email one after another, each waiting for
    the answer, while ``until`` runs (or until the people run out); latencies in ms."""
    latencies = []
    for n in range(first, len(people)):
        if until is not None and until.done():
            break
        sent = time.perf_counter()
        telegram.send_message(FIRST_USER + n, people[n].email)
        _, seconds = await answer_of(telegram, FIRST_USER + n, sent)
        latencies.append(seconds * 1000)
    return latencies


async def hits(users: int, idle_people: int, busy_people: int) -> dict[str, Any]:
    """Directory hits end to end over loopback: first on an idle bot, then while the same bot
    runs a full sync of ``users`` users (defaults but the instant stand-in and its first poll).
    Each person's user is already in the directory; nobody asks GetCourse."""
    people = hit_users(users, idle_people + busy_people)
    async with stand_in_world(demo_data=False) as world, RemoteGetCourse(users) as getcourse:
        telegram = world.telegram
        know_people(world.salebot, len(people))
        settings = world.settings(
            getcourse_base_url=getcourse.base_url,  # the world's own GetCourse stays idle
            getcourse_poll_first_delay=0.01,
            getcourse_full_sync_hours=0,
            getcourse_incremental_sync_minutes=0,
            link_attempts_per_hour=1000,
        )
        async with App.running(settings) as app:
            await DirectoryRepository(app.services.database).upsert(people, time.time())
            polling = asyncio.create_task(app.run_polling(handle_signals=False))
            await telegram.wait_for_poll()
            meter = StealMeter()
            idle = await send_hits(telegram, people[:idle_people], 0)
            idle_steal = meter.share()
            meter = StealMeter()
            started = time.perf_counter()
            sync = asyncio.create_task(app.services.sync.run(SyncKind.FULL))
            busy = await send_hits(telegram, people, idle_people, sync)
            busy_steal = meter.share()
            hits_seconds = time.perf_counter() - started
            result = await sync
            sync_seconds = time.perf_counter() - started
            requests = await getcourse.counted_requests()
            stored = await DirectoryRepository(app.services.database).count()
            await app.dispatcher.stop_polling()
            await polling
    return {
        "idle": (idle, idle_steal),
        "busy": (busy, busy_steal),
        "hits_seconds": hits_seconds,
        "sync_seconds": sync_seconds,
        "complete": result.complete,
        "requests": requests,
        "stored": stored,
    }


# ----- 3: lookups in a large directory -----------------------------------------------------------


async def lookup_latency(rows: int, samples: int = 2000) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "directory.sqlite3"
        database = await Database.open(path)  # the real schema
        await database.close()
        with sqlite3.connect(path) as connection:
            connection.executemany(
                "INSERT INTO gc_directory (gc_user_id, email, phone, first_name, last_name, "
                "created_at, synced_at) VALUES (?, ?, ?, 'Имя', 'Фамилия', "
                "'2024-01-01 10:00:00', 0)",
                ((str(n), f"user{n}@example.com", f"7900{n:07d}") for n in range(rows)),
            )
        database = await Database.open(path)
        repository = DirectoryRepository(database)
        generator = random.Random(1)
        latencies = []
        for _ in range(samples):
            email = f"user{generator.randrange(rows)}@example.com"
            started = time.perf_counter()
            found = await repository.by_email(email)
            latencies.append((time.perf_counter() - started) * 1000)
            assert found is not None
        await database.close()
    return percentile(latencies, 0.5), percentile(latencies, 0.99)


# ----- 4: full sync of a large account, in a child process ---------------------------------------


async def full_sync(users: int) -> dict[str, Any]:
    """``python -m bot sync --full`` on the default budget, reserve and windows (the stand-in
    builds exports at once, so the first poll is not held 10 s): one run, as an operator's
    command would do it; a run that stops to spare the budget says so (exit code 3)."""
    async with stand_in_world(demo_data=False) as world:
        getcourse = world.getcourse
        getcourse.users = old_users(users)
        env = world.env(GETCOURSE_POLL_FIRST_DELAY="0.01", LOG_LEVEL="WARNING")
        started = time.perf_counter()
        # In a thread, so the stand-in keeps serving meanwhile.
        code, peak_rss = await asyncio.to_thread(sync_child, env)
        wall = time.perf_counter() - started
        if code not in (0, 3):
            raise SystemExit(f"sync of {users} users failed (exit {code})")
        with sqlite3.connect(world.database_path) as connection:
            stored = connection.execute("SELECT COUNT(*) FROM gc_directory").fetchone()[0]
    return {
        "wall": wall,
        "rss": peak_rss,
        "stored": int(stored),
        "requests": len([r for r in getcourse.requests if r.counted]),
        "complete": code == 0,
    }


# Runs the command and prints its exit code and peak RSS (KiB). An intermediate process: a child
# forked straight from this big process (the stand-in holds every user) would count the fork's
# copy of it in its peak RSS.
_MEASURE = (
    "import os, subprocess, sys\n"
    "child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
    "_, status, usage = os.wait4(child.pid, 0)\n"
    "print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)\n"
)


def sync_child(env: dict[str, str]) -> tuple[int, float]:
    """``python -m bot sync --full``: its exit code and peak RSS in MB."""
    command = [sys.executable, "-m", "bot", "sync", "--full"]
    output = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return int(output[0]), int(output[1]) / 1024


def table(title: str, rows: list[tuple[str, ...]]) -> None:
    print(f"\n{title}")
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def latency_row(name: str, latencies: list[float], steal: str) -> tuple[str, ...]:
    if not latencies:
        return (name, "0", "-", "-", "-", steal)
    return (
        name,
        str(len(latencies)),
        f"{percentile(latencies, 0.5):.1f} ms",
        f"{percentile(latencies, 0.95):.1f} ms",
        f"{max(latencies):.1f} ms",
        steal,
    )


async def run(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.ERROR)
    print(header("bench/directory.py"))
    print("Settings are the defaults except where a part names a departure.")
    # Hits first, in a fresh process: the launch leaves thousands of objects that later garbage
    # collections walk, which is the benchmark's own cost, not the bot's.
    if 2 in args.parts:
        measured = await hits(args.busy_users, args.idle_hits, args.busy_hits)
        users = args.busy_users
        table(
            "2. Directory hits, end to end over loopback (one person after another; the same bot "
            f"idle, then during a full sync of {users:,} users)\n"
            "   Departures: the GetCourse stand-in (in a child process) builds exports at once and "
            "GETCOURSE_POLL_FIRST_DELAY=0.01, so the sync streams rows back to back",
            [
                ("", "hits", "p50", "p95", "max", "CPU steal, load"),
                latency_row("idle", *measured["idle"]),
                latency_row(f"during the {users:,} sync", *measured["busy"]),
            ],
        )
        stored = measured["stored"]
        ended = "complete" if measured["complete"] else "paused (budget kept for lookups)"
        print(
            f"  the sync: {ended} after {measured['sync_seconds']:.1f} s and "
            f"{measured['requests']} export requests "
            f"(GETCOURSE_EXPORT_BUDGET=60, GETCOURSE_SYNC_RESERVE=20), {stored:,} of {users:,} "
            f"users stored ({100 * stored / users:.0f}%); hits sent during its first "
            f"{measured['hits_seconds']:.1f} s"
        )
    if 1 in args.parts:
        meter = StealMeter()
        naive = await launch("naive", args.people, args.scale, args.coalesce)
        mirrored = await launch("directory", args.people, args.scale, args.coalesce)
        table(
            f"1. Launch: {args.people} people in {LAUNCH_MINUTES} min, none in the directory "
            f"(CPU steal {meter.share()})\n"
            f"   Departures: exports take {EXPORT_SECONDS:.0f} s to build; every duration "
            f"(arrivals, build, polls, GETCOURSE_LOOKUP_TIMEOUT, GETCOURSE_COALESCE_SECONDS="
            f"{args.coalesce:g}, the queued notice, the patience, the 2-hour window) is divided by "
            f"{args.scale:g} and latencies are shown scaled back; GETCOURSE_LOOKUPS_PER_HOUR and "
            "LINK_ATTEMPTS_PER_HOUR raised (the bench's people are not abusers); the directory "
            f"before the launch holds {OLD_USERS} users synced from GETCOURSE_SYNC_SINCE="
            f"{SINCE.date()} in 400-day windows (not counted below)\n"
            "   naive: a bot asking GetCourse once per email in the dialog, with no budget of its "
            "own (GetCourse's limit of 100 per 2 hours stops it)",
            [("", "naive (export per email)", "directory")]
            + [(name, str(naive[name]), str(mirrored[name])) for name in naive],
        )
    if 3 in args.parts:
        rows = [("rows", "p50", "p99")]
        for size in args.rows:
            p50, p99 = await lookup_latency(size)
            rows.append((f"{size:,}", f"{p50:.3f} ms", f"{p99:.3f} ms"))
        table("3. Directory lookup by email (DirectoryRepository.by_email)", rows)
    if 4 in args.parts:
        rows = [
            ("users", "export requests", "finished", "rows stored", "wall time", "peak RSS (bot)")
        ]
        for size in args.sync:
            sync = await full_sync(size)
            rows.append(
                (
                    f"{size:,}",
                    str(sync["requests"]),
                    "yes" if sync["complete"] else "no: paused at the reserve",
                    f"{sync['stored']:,} ({100 * sync['stored'] / size:.0f}%)",
                    f"{sync['wall']:.1f} s",
                    f"{sync['rss']:.0f} MB",
                )
            )
        table(
            "4. Full sync (python -m bot sync --full, one run) from the stand-in\n"
            "   Departures: the stand-in builds exports at once, GETCOURSE_POLL_FIRST_DELAY=0.01; "
            "users registered evenly from 2020-01-01 over 1,500 days; budget, reserve, "
            "GETCOURSE_SYNC_SINCE and windows are the defaults",
            rows,
        )


def sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--parts", type=sizes, default=[1, 2, 3, 4], help="e.g. 2,4")
    parser.add_argument("--people", type=int, default=500)
    parser.add_argument("--scale", type=float, default=20.0)
    parser.add_argument("--coalesce", type=float, default=15.0, help="GETCOURSE_COALESCE_SECONDS")
    parser.add_argument("--idle-hits", type=int, default=200)
    parser.add_argument("--busy-hits", type=int, default=5000, help="at most, during the sync")
    parser.add_argument("--busy-users", type=int, default=1_000_000)
    parser.add_argument("--rows", type=sizes, default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--sync", type=sizes, default=[100_000, 1_000_000])
    parser.add_argument("--serve-getcourse", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_getcourse is not None:
        asyncio.run(serve_getcourse(args.serve_getcourse))
        return
    asyncio.run(run(args))


if __name__ == "__main__":
    main()

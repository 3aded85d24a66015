"""The outbox worker over a real SQLite file and the Salebot stand-in on loopback.

Work is queued the way the app queues it (link upsert + enqueue in one transaction); the worker
is driven through ``deliver_due`` with a fake clock, so no test waits for a real retry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.salebot import NoClientAnswer, SalebotStandIn, SavedAnswer
from sandbox.server import Fault
from services.backoff import RetryPolicy
from services.models import Link, salebot_variables
from services.notifications import OperatorEvent, OperatorNotice
from services.salebot.client import SalebotClient
from services.salebot.outbox import DeliverySchedule, OutboxWorker
from services.storage.database import Database
from services.storage.links import LinkRepository
from services.storage.outbox import OutboxRepository
from services.supervision import Supervisor
from tests.conftest import eventually

API_KEY = "sb-outbox-secret-key-9876543210"
BOT = "school_funnel_bot"
TELEGRAM_ID = 7_000_000_001  # above 2**31; must reach Salebot as exactly "7000000001"
START = 1_750_000_000.0
FIRST_DELAY = 10.0
MAX_DELAY = 60.0
TIMEOUT = 0.3
FIND = "find_client_id_by_platform_id"


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def standin() -> AsyncIterator[SalebotStandIn]:
    async with SalebotStandIn(api_key=API_KEY) as stand_in:
        yield stand_in


@pytest.fixture
async def salebot(standin: SalebotStandIn) -> AsyncIterator[SalebotClient]:
    async with httpx.AsyncClient(base_url=standin.base_url, timeout=TIMEOUT) as http:
        yield SalebotClient(http, API_KEY, BOT)


def quick(policy: RetryPolicy) -> DeliverySchedule:
    """The same policy whatever the cause, so tests control every delay."""
    return DeliverySchedule(retry=policy, missing_client=policy)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_worker(salebot: SalebotClient, clock: FakeClock) -> Callable[[Database], OutboxWorker]:
    def make(database: Database) -> OutboxWorker:
        policy = RetryPolicy(first_delay=FIRST_DELAY, max_delay=MAX_DELAY, jitter=0)
        return OutboxWorker(database, salebot, quick(policy), clock=clock)

    return make


@pytest.fixture
def worker(database: Database, make_worker: Callable[[Database], OutboxWorker]) -> OutboxWorker:
    return make_worker(database)


async def link_and_enqueue(
    database: Database,
    now: float,
    *,
    telegram_id: int = TELEGRAM_ID,
    email: str = "ivan@example.com",
    gc_user_id: str = "123456789",
) -> Link:
    """What LinkService.link does once GetCourse found the person."""
    stamp = datetime.fromtimestamp(now, UTC)
    link = Link(
        telegram_id=telegram_id,
        email=email,
        gc_user_id=gc_user_id,
        gc_name="Иван Петров",
        salebot_client_id=None,
        linked_at=stamp,
        updated_at=stamp,
    )
    async with database.transaction() as tx:
        await LinkRepository.upsert(tx, link)
        await OutboxRepository.enqueue(tx, telegram_id, salebot_variables(link), now)
    return link


async def outbox_rows(database: Database) -> list[dict[str, Any]]:
    async with database.connection.execute("SELECT * FROM outbox ORDER BY id") as cursor:
        return [dict(row) for row in await cursor.fetchall()]


async def only_row(database: Database) -> dict[str, Any]:
    [row] = await outbox_rows(database)
    return row


def expected_variables(
    email: str = "ivan@example.com", gc_user_id: str = "123456789"
) -> dict[str, str]:
    return {"email": email, "gc_user_id": gc_user_id, "telegram_id": "7000000001"}


# -- success -----------------------------------------------------------------------------------


async def test_delivers_the_variables_and_records_the_client_id(
    standin: SalebotStandIn, database: Database, worker: OutboxWorker
) -> None:
    client = standin.add_client(TELEGRAM_ID)
    await link_and_enqueue(database, START)

    assert await worker.deliver_due() == 1

    assert standin.client_variables(client.id) == expected_variables()
    [save] = standin.requests_of("save_variables")
    assert save.body == {
        "client_id": client.id,
        "variables": {
            "client.email": "ivan@example.com",
            "client.gc_user_id": "123456789",
            "client.telegram_id": "7000000001",
        },
    }
    row = await only_row(database)
    assert (row["state"], row["attempts"], row["last_error"]) == ("delivered", 1, None)
    link = await LinkRepository(database).get(TELEGRAM_ID)
    assert link is not None
    assert link.salebot_client_id == client.id
    assert await worker.deliver_due() == 0  # nothing is delivered twice
    assert len(standin.requests_of("save_variables")) == 1


# -- failures and retries ----------------------------------------------------------------------

Setup = Callable[[SalebotStandIn], None]


def _add_client(standin: SalebotStandIn) -> None:
    standin.add_client(TELEGRAM_ID)


def _nothing(standin: SalebotStandIn) -> None:
    pass


FAILURES: dict[str, tuple[bool, Setup, Setup]] = {
    # (does the Salebot client exist from the start, what goes wrong before the first
    # attempt, what puts it right before the retry)
    "no_client_yet": (False, _nothing, _add_client),
    "client_not_found_answer": (
        True,
        lambda sb: sb.answer_client_not_found("save_variables"),
        _nothing,
    ),
    "salebot_down": (True, lambda sb: sb.set_down(), lambda sb: sb.set_down(False)),
    "http_500": (True, lambda sb: sb.fail_next(FIND, status=500), _nothing),
    "http_429": (True, lambda sb: sb.fail_next("save_variables", status=429), _nothing),
    "timeout": (True, lambda sb: sb.delay_next("save_variables", TIMEOUT * 5), _nothing),
}


@pytest.mark.parametrize("failure", list(FAILURES))
async def test_failed_write_stays_pending_and_is_retried_when_due(
    standin: SalebotStandIn,
    database: Database,
    worker: OutboxWorker,
    clock: FakeClock,
    failure: str,
) -> None:
    client_exists, break_it, fix_it = FAILURES[failure]
    if client_exists:
        _add_client(standin)
    break_it(standin)
    await link_and_enqueue(database, START)
    clock.now = START + 5  # the worker reaches it a little later

    assert await worker.deliver_due() == 0

    row = await only_row(database)
    assert row["state"] == "pending"
    assert row["attempts"] == 1
    assert row["last_error"]
    assert API_KEY not in row["last_error"]
    assert row["next_attempt_at"] == START + 5 + FIRST_DELAY

    fix_it(standin)
    seen = len(standin.requests)
    clock.now = START + 5 + FIRST_DELAY - 0.001
    assert await worker.deliver_due() == 0
    assert len(standin.requests) == seen  # not tried before it is due
    assert (await only_row(database))["attempts"] == 1

    clock.now = START + 5 + FIRST_DELAY
    assert await worker.deliver_due() == 1

    client = standin.client_by_platform_id(TELEGRAM_ID)
    assert client is not None
    assert standin.client_variables(client.id) == expected_variables()
    row = await only_row(database)
    assert (row["state"], row["attempts"], row["last_error"]) == ("delivered", 2, None)


@pytest.mark.parametrize("shape", ["empty_list", "http_404", "status_object"])
async def test_no_client_in_any_shape_waits_for_the_client_and_then_lands(
    standin: SalebotStandIn,
    database: Database,
    worker: OutboxWorker,
    clock: FakeClock,
    shape: NoClientAnswer,
) -> None:
    standin.no_client_answer = shape
    await link_and_enqueue(database, START)

    assert await worker.deliver_due() == 0
    row = await only_row(database)
    assert (row["state"], row["cause"]) == ("pending", "client_not_found")  # not given up

    client = standin.add_client(TELEGRAM_ID)  # the person starts the funnel bot
    clock.now = row["next_attempt_at"]
    assert await worker.deliver_due() == 1
    assert standin.client_variables(client.id) == expected_variables()


@pytest.mark.parametrize("shape", ["empty", "text"])
async def test_save_answered_with_an_empty_or_non_json_body_is_delivered_once(
    standin: SalebotStandIn, database: Database, worker: OutboxWorker, shape: SavedAnswer
) -> None:
    client = standin.add_client(TELEGRAM_ID)
    standin.saved_answer = shape
    await link_and_enqueue(database, START)

    assert await worker.deliver_due() == 1

    assert standin.client_variables(client.id) == expected_variables()
    row = await only_row(database)
    assert (row["state"], row["attempts"]) == ("delivered", 1)
    assert len(standin.requests_of("save_variables")) == 1


async def test_retry_delays_double_up_to_the_cap(
    standin: SalebotStandIn, database: Database, worker: OutboxWorker, clock: FakeClock
) -> None:
    await link_and_enqueue(database, START)  # no Salebot client: every attempt fails

    delays = []
    for _ in range(6):
        assert await worker.deliver_due() == 0
        row = await only_row(database)
        delays.append(row["next_attempt_at"] - clock.now)
        # Just before it is due nothing happens; then it is due.
        seen = len(standin.requests)
        clock.now = row["next_attempt_at"] - 0.5
        assert await worker.deliver_due() == 0
        assert len(standin.requests) == seen
        clock.now = row["next_attempt_at"]

    assert delays == [10.0, 20.0, 40.0, 60.0, 60.0, 60.0]
    assert (await only_row(database))["attempts"] == 6

    _add_client(standin)
    assert await worker.deliver_due() == 1


async def test_a_write_failing_for_weeks_keeps_being_retried_at_the_cap(
    standin: SalebotStandIn, database: Database, worker: OutboxWorker, clock: FakeClock
) -> None:
    await link_and_enqueue(database, START)
    # About 45 days of hourly retries for a person who never started the Salebot bot.
    await database.connection.execute("UPDATE outbox SET attempts = 1100")

    assert await worker.deliver_due() == 0  # must not raise: that would kill run() for all

    row = await only_row(database)
    assert (row["state"], row["attempts"]) == ("pending", 1101)
    assert row["next_attempt_at"] == START + MAX_DELAY


async def test_item_survives_a_restart(
    standin: SalebotStandIn,
    tmp_path: Path,
    make_worker: Callable[[Database], OutboxWorker],
    clock: FakeClock,
) -> None:
    path = tmp_path / "bot.sqlite3"
    database = await Database.open(path)
    await link_and_enqueue(database, START)
    await make_worker(database).deliver_due()  # no client yet: fails once
    await database.close()

    client = standin.add_client(TELEGRAM_ID)
    database = await Database.open(path)
    try:
        row = await only_row(database)
        assert (row["state"], row["attempts"]) == ("pending", 1)
        clock.now = row["next_attempt_at"]

        assert await make_worker(database).deliver_due() == 1

        assert standin.client_variables(client.id) == expected_variables()
        assert (await only_row(database))["state"] == "delivered"
        link = await LinkRepository(database).get(TELEGRAM_ID)
        assert link is not None
        assert link.salebot_client_id == client.id
    finally:
        await database.close()


async def test_a_newer_write_supersedes_the_pending_one(
    standin: SalebotStandIn, database: Database, worker: OutboxWorker, clock: FakeClock
) -> None:
    client = standin.add_client(TELEGRAM_ID)
    await link_and_enqueue(database, START, email="old@example.com", gc_user_id="111")
    await link_and_enqueue(database, START + 1, email="new@example.com", gc_user_id="222")
    clock.now = START + 1

    assert await worker.deliver_due() == 1

    assert standin.client_variables(client.id) == expected_variables("new@example.com", "222")
    [save] = standin.requests_of("save_variables")
    assert save.body["variables"]["client.email"] == "new@example.com"
    assert [row["state"] for row in await outbox_rows(database)] == ["superseded", "delivered"]


async def test_a_newer_write_supersedes_one_that_is_waiting_for_a_retry(
    standin: SalebotStandIn, database: Database, worker: OutboxWorker, clock: FakeClock
) -> None:
    await link_and_enqueue(database, START, email="old@example.com")
    assert await worker.deliver_due() == 0  # no client yet
    client = standin.add_client(TELEGRAM_ID)
    await link_and_enqueue(database, START + 1, email="new@example.com")
    clock.now = START + 1  # the new write is due now, the old retry is not

    assert await worker.deliver_due() == 1

    clock.now = START + 10 * MAX_DELAY  # long after the old retry would have been due
    assert await worker.deliver_due() == 0
    assert standin.client_variables(client.id)["email"] == "new@example.com"
    assert len(standin.requests_of("save_variables")) == 1
    assert [row["state"] for row in await outbox_rows(database)] == ["superseded", "delivered"]


async def test_delivering_the_same_variables_twice_gives_the_same_result(
    standin: SalebotStandIn, database: Database, worker: OutboxWorker, clock: FakeClock
) -> None:
    client = standin.add_client(TELEGRAM_ID)
    await link_and_enqueue(database, START)
    assert await worker.deliver_due() == 1
    after_first = standin.client_variables(client.id)

    await link_and_enqueue(database, START + 1)  # the person sends the same email again
    clock.now = START + 1
    assert await worker.deliver_due() == 1

    assert standin.client_variables(client.id) == after_first == expected_variables()
    assert len(standin.requests_of("save_variables")) == 2
    assert [row["state"] for row in await outbox_rows(database)] == ["delivered", "delivered"]


# -- the run() loop (real clock, short real waits bounded by a deadline) ----------------------


async def test_run_delivers_when_woken_and_stops(
    standin: SalebotStandIn, database: Database, salebot: SalebotClient
) -> None:
    client = standin.add_client(TELEGRAM_ID)
    # idle_check is long: only wake() can make it deliver within the deadline.
    worker = OutboxWorker(database, salebot, quick(RetryPolicy(jitter=0)), idle_check=60.0)
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0.05)  # let it go idle first
        await link_and_enqueue(database, time.time())
        worker.wake()

        await eventually(lambda: "telegram_id" in standin.client_variables(client.id))

        assert standin.client_variables(client.id) == expected_variables()
    finally:
        worker.stop()
        await asyncio.wait_for(task, 2.0)
    assert task.done()
    assert task.exception() is None
    assert (await only_row(database))["state"] == "delivered"


async def test_run_retries_on_its_own_when_the_retry_is_due(
    standin: SalebotStandIn, database: Database, salebot: SalebotClient
) -> None:
    client = standin.add_client(TELEGRAM_ID)
    standin.fail_next(FIND, status=500)
    worker = OutboxWorker(
        database,
        salebot,
        quick(RetryPolicy(first_delay=0.05, max_delay=0.05, jitter=0)),
        idle_check=60.0,
    )
    await link_and_enqueue(database, time.time())
    task = asyncio.create_task(worker.run())
    try:
        await eventually(lambda: "telegram_id" in standin.client_variables(client.id))
    finally:
        worker.stop()
        await asyncio.wait_for(task, 2.0)
    row = await only_row(database)
    assert (row["state"], row["attempts"]) == ("delivered", 2)


class FlakySalebot(SalebotClient):
    """Fails once with an error no one planned for (a bug, a driver hiccup)."""

    failed = False

    async def find_client_id(self, telegram_id: int) -> int:
        if not self.failed:
            self.failed = True
            raise RuntimeError("unexpected")
        return await super().find_client_id(telegram_id)


async def test_run_survives_an_unexpected_error_under_the_supervisor(
    standin: SalebotStandIn, database: Database
) -> None:
    client = standin.add_client(TELEGRAM_ID)
    http = httpx.AsyncClient(base_url=standin.base_url, timeout=TIMEOUT)
    flaky = FlakySalebot(http, API_KEY, BOT)
    worker = OutboxWorker(database, flaky, quick(RetryPolicy(jitter=0)), idle_check=60.0)
    supervisor = Supervisor(RetryPolicy(first_delay=0.01, max_delay=0.05, jitter=0))
    await link_and_enqueue(database, time.time())
    task = supervisor.start("outbox", worker.run)
    try:
        # Started again after the failure, the worker delivers the write it failed on.
        await eventually(lambda: "telegram_id" in standin.client_variables(client.id))
    finally:
        worker.stop()
        await asyncio.wait_for(task, 2.0)
        await http.aclose()
    assert flaky.failed
    [status] = supervisor.statuses()
    assert (status.restarts, status.last_error) == (1, "RuntimeError")


# -- RetryPolicy -------------------------------------------------------------------------------


def test_retry_policy_without_jitter_is_exponential_and_capped() -> None:
    policy = RetryPolicy(first_delay=5.0, max_delay=3600.0, jitter=0)

    assert [policy.delay(n) for n in range(1, 12)] == [
        5.0,
        10.0,
        20.0,
        40.0,
        80.0,
        160.0,
        320.0,
        640.0,
        1280.0,
        2560.0,
        3600.0,
    ]


def test_retry_policy_jitter_stays_within_bounds() -> None:
    policy = RetryPolicy(first_delay=5.0, max_delay=3600.0, jitter=0.2)

    for attempts in range(1, 15):
        base = min(5.0 * 2 ** (attempts - 1), 3600.0)
        samples = [policy.delay(attempts) for _ in range(200)]
        assert all(base * 0.8 <= delay <= base * 1.2 for delay in samples)
        assert len(set(samples)) > 1  # it does jitter


def test_retry_policy_survives_a_very_long_outage() -> None:
    # An item whose Salebot client never appears is retried (hourly) for good; its attempt
    # count must not overflow the backoff arithmetic and crash the worker.
    policy = RetryPolicy(first_delay=5.0, max_delay=3600.0, jitter=0)

    assert policy.delay(1_100) == 3600.0
    assert policy.delay(10_000_000) == 3600.0


# -- permanent failures, the missing-client schedule, a person coming back ---------------------


class RecordingNotifier:
    def __init__(self) -> None:
        self.notices: list[OperatorNotice] = []

    def notify(self, notice: OperatorNotice) -> None:
        self.notices.append(notice)


def patient_worker(
    database: Database, salebot: SalebotClient, clock: FakeClock, notifier: RecordingNotifier
) -> OutboxWorker:
    schedule = DeliverySchedule(
        retry=RetryPolicy(first_delay=FIRST_DELAY, max_delay=MAX_DELAY, jitter=0),
        missing_client=RetryPolicy(first_delay=FIRST_DELAY, max_delay=1000.0, jitter=0),
        missing_client_for=5000.0,
    )
    return OutboxWorker(database, salebot, schedule, clock=clock, notifier=notifier)


@pytest.mark.parametrize(
    ("break_it", "event"),
    [
        (lambda sb: sb.reject_key(), OperatorEvent.SALEBOT_KEY_REJECTED),
        (
            lambda sb: sb.faults.add(
                "save_variables", Fault(status=400, json_body={"status": "error"})
            ),
            OperatorEvent.DELIVERY_FAILED,
        ),
    ],
    ids=["bad-key", "invalid-request"],
)
async def test_rejection_stops_retries_and_reaches_operators(
    standin: SalebotStandIn,
    database: Database,
    salebot: SalebotClient,
    clock: FakeClock,
    break_it: Setup,
    event: OperatorEvent,
) -> None:
    standin.add_client(TELEGRAM_ID)
    notifier = RecordingNotifier()
    worker = patient_worker(database, salebot, clock, notifier)
    break_it(standin)
    await link_and_enqueue(database, clock.now)

    assert await worker.deliver_due() == 0
    row = await only_row(database)
    assert (row["state"], row["cause"]) == ("failed", "rejected")
    assert [notice.event for notice in notifier.notices] == [event]
    assert notifier.notices[0].details["telegram_id"] == str(TELEGRAM_ID)

    seen = len(standin.requests)
    clock.now += 10 * MAX_DELAY
    assert await worker.deliver_due() == 0
    assert len(standin.requests) == seen  # never tried again


async def test_missing_client_retries_on_its_slower_schedule_then_gives_up(
    standin: SalebotStandIn, database: Database, salebot: SalebotClient, clock: FakeClock
) -> None:
    notifier = RecordingNotifier()
    worker = patient_worker(database, salebot, clock, notifier)
    await link_and_enqueue(database, clock.now)

    delays = []
    while (await only_row(database))["state"] == "pending":
        before = clock.now
        await worker.deliver_due()
        row = await only_row(database)
        if row["state"] == "pending":
            delays.append(row["next_attempt_at"] - before)
            clock.now = row["next_attempt_at"]
    # Past the usual cap (MAX_DELAY) up to the missing-client cap, and given up after 5000 s.
    assert delays == [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000, 1000]
    assert (row["state"], row["cause"]) == ("failed", "client_not_found")
    assert [notice.event for notice in notifier.notices] == [OperatorEvent.DELIVERY_FAILED]


async def test_person_writing_again_retries_a_missing_client_at_once(
    standin: SalebotStandIn, database: Database, salebot: SalebotClient, clock: FakeClock
) -> None:
    worker = patient_worker(database, salebot, clock, RecordingNotifier())
    await link_and_enqueue(database, clock.now)
    await worker.deliver_due()  # no client yet: waits FIRST_DELAY
    standin.add_client(TELEGRAM_ID)

    await worker.person_is_back(TELEGRAM_ID)
    assert await worker.deliver_due() == 1
    assert standin.client_variables(standin.clients[-1].id) == expected_variables()


async def test_person_writing_again_does_not_hurry_other_causes(
    standin: SalebotStandIn, database: Database, salebot: SalebotClient, clock: FakeClock
) -> None:
    standin.add_client(TELEGRAM_ID)
    standin.set_down()
    worker = patient_worker(database, salebot, clock, RecordingNotifier())
    await link_and_enqueue(database, clock.now)
    await worker.deliver_due()
    standin.set_down(False)

    await worker.person_is_back(TELEGRAM_ID)
    assert await worker.deliver_due() == 0  # Salebot trouble keeps its own backoff

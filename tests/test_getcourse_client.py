"""GetCourseClient against the GetCourse stand-in over real HTTP on loopback, plus narrow
parsing tests (shapes the stand-in cannot produce) on ``httpx.MockTransport``."""

from __future__ import annotations

import asyncio
import json
import socket
import traceback
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from sandbox.getcourse import EmptyResultStyle, GetCourseStandIn, GetCourseUserRecord
from sandbox.server import Fault
from services import errors
from services.getcourse.budget import ExportBudget
from services.getcourse.exports import EXPORT_BATCH_ROWS, GetCourseClient, PollSchedule
from services.models import GetCourseUser
from services.notifications import OperatorEvent, OperatorNotice
from services.storage.database import Database

# URL-safe, so it would appear verbatim wherever a request URL leaks into a message.
KEY = "gc-K3y-5ecret-9f8e7d6c"
FAST = PollSchedule(first_delay=0.01, max_interval=0.02, give_up_after=2.0)
HTTP_TIMEOUT = 2.0
TWO_HOURS = 2 * 60 * 60  # GetCourse's rolling window, spelled out rather than imported

USERS = (
    GetCourseUserRecord(
        id=187654321,
        email="ivan.petrov@example.com",
        first_name="Иван",
        last_name="Петров",
        phone="+79161234567",
        city="Москва",
        created_at="2024-03-01 10:15:00",
        custom={"Telegram ID": "100200300", "Тариф": "Базовый"},
    ),
    GetCourseUserRecord(
        id=187654322,
        email="anna@example.org",
        first_name="Анна",
        last_name="Смирнова",
        phone="+79031112233",
        created_at="2024-05-12 18:40:05",
        custom={"Тариф": "Премиум"},
    ),
    GetCourseUserRecord(
        id=187654323,
        email="Maria.Sidorova@Example.com",
        first_name="Мария",
        last_name="Сидорова",
        created_at="2024-07-20 09:00:00",
    ),
)


E = TypeVar("E", bound=errors.GetCourseError)


class FakeClock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# ----- fixtures -------------------------------------------------------------------------------


@pytest.fixture
async def standin() -> AsyncIterator[GetCourseStandIn]:
    async with GetCourseStandIn(api_key=KEY, users=USERS) as gc:
        yield gc


@pytest.fixture
def budget(database: Database) -> ExportBudget:
    return ExportBudget(database, 100)


@pytest.fixture
async def http(standin: GetCourseStandIn) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=standin.base_url, follow_redirects=False, timeout=HTTP_TIMEOUT
    ) as client:
        yield client


@pytest.fixture
def client(http: httpx.AsyncClient, budget: ExportBudget) -> GetCourseClient:
    return GetCourseClient(http, KEY, budget, FAST)


# ----- helpers --------------------------------------------------------------------------------


def assert_no_key(error: BaseException) -> None:
    """Neither the message nor anything a log would print with the traceback carries the key."""
    assert KEY not in str(error)
    assert KEY not in "".join(traceback.format_exception(error))


async def expect_error(call: Awaitable[object], kind: type[E]) -> E:
    with pytest.raises(kind) as caught:
        await call
    assert_no_key(caught.value)
    return caught.value


def endpoints(gc: GetCourseStandIn) -> list[str]:
    return [request.endpoint for request in gc.requests]


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# ----- found / not found ----------------------------------------------------------------------


async def test_found_user_is_read_by_header_with_custom_columns_in_the_middle(
    client: GetCourseClient, standin: GetCourseStandIn, budget: ExportBudget
) -> None:
    user = await client.find_user_by_email("ivan.petrov@example.com")

    assert user is not None
    assert user.id == "187654321"
    assert user.email == "ivan.petrov@example.com"
    assert (user.first_name, user.last_name, user.phone) == ("Иван", "Петров", "+79161234567")
    assert user.custom_fields["Telegram ID"] == "100200300"
    assert user.custom_fields["Тариф"] == "Базовый"
    # Columns read into named attributes are not repeated as custom fields.
    assert not {"id", "Email", "Имя", "Фамилия", "Телефон"} & user.custom_fields.keys()
    assert endpoints(standin) == ["users", "exports"]
    assert standin.requests[0].params == {"email": "ivan.petrov@example.com"}
    assert await budget.used() == len(standin.requests) == 2


async def test_email_stored_with_capitals_is_found_by_its_lower_case_form(
    client: GetCourseClient,
) -> None:
    user = await client.find_user_by_email("maria.sidorova@example.com")

    assert user is not None
    assert user.id == "187654323"
    assert user.email == "maria.sidorova@example.com"


async def test_several_909_polls_then_found_and_ledger_matches_what_was_sent(
    client: GetCourseClient, standin: GetCourseStandIn, budget: ExportBudget
) -> None:
    standin.not_ready_polls = 3

    user = await client.find_user_by_email("anna@example.org")

    assert user is not None
    assert user.id == "187654322"
    assert endpoints(standin) == ["users", "exports", "exports", "exports", "exports"]
    assert [r.error_code for r in standin.requests] == [None, 909, 909, 909, None]
    assert await budget.used() == len(standin.requests) == standin.export_requests_in_window()


@pytest.mark.parametrize("style", ["items", "error"])
async def test_no_match_is_none_in_both_empty_styles(
    client: GetCourseClient, standin: GetCourseStandIn, style: EmptyResultStyle
) -> None:
    standin.empty_result_style = style

    assert await client.find_user_by_email("nobody@example.com") is None
    assert endpoints(standin) == ["users", "exports"]


async def test_ignored_email_filter_is_rechecked_on_our_side(
    client: GetCourseClient, standin: GetCourseStandIn
) -> None:
    standin.email_filter_ignored = True

    user = await client.find_user_by_email("anna@example.org")
    assert user is not None
    assert (user.id, user.email) == ("187654322", "anna@example.org")

    # The answer held other people: the filter is ignored here, and remembered as such, so the
    # next single lookup is refused at once (its caller uses a window export).
    with pytest.raises(errors.GetCourseFilterRefused):
        await client.find_user_by_email("nobody@example.com")
    assert standin.exports_started() == 1
    assert not await client.email_filter_works()


async def test_an_unknown_email_filter_answering_908_is_learned(
    client: GetCourseClient, standin: GetCourseStandIn
) -> None:
    standin.email_filter_unknown = True
    with pytest.raises(errors.GetCourseFilterRefused):
        await client.find_user_by_email("anna@example.org")
    with pytest.raises(errors.GetCourseFilterRefused):
        await client.find_user_by_email("anna@example.org")
    assert [r.params for r in standin.requests] == [{"email": "anna@example.org"}]
    assert not await client.email_filter_works()


# ----- error mapping --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "code", "error"),
    [
        ("exports", 905, errors.GetCourseBusy),  # a busy start is retried instead: see below
        ("users", 903, errors.GetCourseRateLimited),
        ("exports", 903, errors.GetCourseRateLimited),
        ("users", 901, errors.GetCourseConfigError),
        ("exports", 901, errors.GetCourseConfigError),
        ("users", 917, errors.GetCourseConfigError),
        ("exports", 917, errors.GetCourseConfigError),
    ],
)
async def test_error_codes_map_to_typed_errors(
    client: GetCourseClient,
    standin: GetCourseStandIn,
    budget: ExportBudget,
    endpoint: str,
    code: int,
    error: type[errors.GetCourseError],
) -> None:
    standin.fail_next(endpoint, error_code=code)

    await expect_error(client.find_user_by_email("ivan.petrov@example.com"), error)

    # Nothing is sent after the refusal, and every request sent was paid for.
    expected = ["users"] if endpoint == "users" else ["users", "exports"]
    assert endpoints(standin) == expected
    assert standin.requests[-1].error_code == code
    assert await budget.used() == len(standin.requests)


@pytest.mark.parametrize("endpoint", ["users", "exports"])
@pytest.mark.parametrize(
    ("fault", "error"),
    [
        pytest.param(
            Fault(status=500, body="Internal Server Error"), errors.GetCourseUnavailable, id="500"
        ),
        pytest.param(Fault(status=503, body=""), errors.GetCourseUnavailable, id="503"),
        pytest.param(
            Fault(
                status=200,
                body="<!DOCTYPE html><html><body>Техработы</body></html>",
                headers={"Content-Type": "text/html"},
            ),
            errors.GetCourseBadResponse,
            id="html",
        ),
        pytest.param(Fault(status=200, body=""), errors.GetCourseBadResponse, id="empty"),
        pytest.param(
            Fault(status=200, body="}{ not json"), errors.GetCourseBadResponse, id="garbage"
        ),
        pytest.param(
            Fault(status=200, json_body=["a", "list"]), errors.GetCourseBadResponse, id="list"
        ),
    ],
)
async def test_transport_level_faults_map_to_typed_errors(
    client: GetCourseClient,
    standin: GetCourseStandIn,
    endpoint: str,
    fault: Fault,
    error: type[errors.GetCourseError],
) -> None:
    standin.faults.add(endpoint, fault)

    await expect_error(client.find_user_by_email("ivan.petrov@example.com"), error)
    assert endpoints(standin)[-1] == endpoint


@pytest.mark.parametrize("endpoint", ["users", "exports"])
async def test_answer_slower_than_the_http_timeout_is_unavailable(
    standin: GetCourseStandIn, budget: ExportBudget, endpoint: str
) -> None:
    # A late answer with a body of its own, so nothing is started after the client gave up.
    standin.faults.add(endpoint, Fault(delay=0.3, status=200, body="late"))
    async with httpx.AsyncClient(
        base_url=standin.base_url, follow_redirects=False, timeout=0.05
    ) as http:
        client = GetCourseClient(http, KEY, budget, FAST)
        await expect_error(
            client.find_user_by_email("ivan.petrov@example.com"), errors.GetCourseUnavailable
        )
    assert endpoints(standin)[-1] == endpoint


async def test_connection_refused_is_unavailable(budget: ExportBudget) -> None:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{closed_port()}", follow_redirects=False, timeout=HTTP_TIMEOUT
    ) as http:
        client = GetCourseClient(http, KEY, budget, FAST)
        await expect_error(
            client.find_user_by_email("ivan.petrov@example.com"), errors.GetCourseUnavailable
        )


async def test_export_never_ready_times_out(
    http: httpx.AsyncClient, budget: ExportBudget, standin: GetCourseStandIn
) -> None:
    standin.not_ready_polls = 10**6
    schedule = PollSchedule(first_delay=0.01, max_interval=0.02, give_up_after=0.1)
    client = GetCourseClient(http, KEY, budget, schedule)

    await expect_error(
        client.find_user_by_email("ivan.petrov@example.com"), errors.GetCourseExportTimeout
    )

    polls = endpoints(standin)[1:]
    assert endpoints(standin)[0] == "users"
    assert len(polls) >= 2  # it did keep polling before giving up
    assert set(polls) == {"exports"}
    assert all(r.error_code == 909 for r in standin.requests[1:])
    assert await budget.used() == len(standin.requests)


# ----- redirects and wrong account ------------------------------------------------------------


async def test_redirect_is_a_config_error_naming_the_domain_and_is_not_followed(
    client: GetCourseClient, standin: GetCourseStandIn
) -> None:
    standin.redirect_to("https://school.example.com")

    error = await expect_error(
        client.find_user_by_email("ivan.petrov@example.com"), errors.GetCourseConfigError
    )

    assert "https://school.example.com" in str(error)
    assert endpoints(standin) == ["users"]  # no poll, no second attempt


async def test_redirect_is_not_followed_even_by_a_client_that_follows_redirects(
    standin: GetCourseStandIn, budget: ExportBudget
) -> None:
    """The key travels in the query string: following the 301 would hand it to another host.
    Here the "other host" is a second loopback account that records what it receives."""
    async with GetCourseStandIn(api_key=KEY, users=USERS) as elsewhere:
        standin.redirect_to(elsewhere.base_url)
        async with httpx.AsyncClient(
            base_url=standin.base_url, follow_redirects=True, timeout=HTTP_TIMEOUT
        ) as http:
            client = GetCourseClient(http, KEY, budget, FAST)
            error = await expect_error(
                client.find_user_by_email("ivan.petrov@example.com"), errors.GetCourseConfigError
            )
        assert elsewhere.base_url in str(error)
        assert elsewhere.requests == []


async def test_wrong_subdomain_is_a_config_error(
    client: GetCourseClient, standin: GetCourseStandIn
) -> None:
    standin.wrong_subdomain = True

    await expect_error(
        client.find_user_by_email("ivan.petrov@example.com"), errors.GetCourseConfigError
    )
    assert endpoints(standin) == ["users"]


# ----- budget ---------------------------------------------------------------------------------


async def test_budget_stops_the_client_before_the_limit_and_is_persisted(
    tmp_path: Path, standin: GetCourseStandIn, http: httpx.AsyncClient
) -> None:
    path = tmp_path / "bot.sqlite3"
    clock = FakeClock(1_000_000.0)
    standin.not_ready_polls = 10**6

    database = await Database.open(path)
    try:
        client = GetCourseClient(http, KEY, ExportBudget(database, 3, clock=clock), FAST)
        error = await expect_error(
            client.find_user_by_email("ivan.petrov@example.com"), errors.GetCourseBudgetExhausted
        )
    finally:
        await database.close()
    assert error.retry_after == pytest.approx(TWO_HOURS)
    assert endpoints(standin) == ["users", "exports", "exports"]
    assert standin.export_requests_in_window() == 3

    # A restart does not reset the ledger.
    database = await Database.open(path)
    try:
        budget = ExportBudget(database, 3, clock=clock)
        assert await budget.used() == 3
        clock.now += 60
        client = GetCourseClient(http, KEY, budget, FAST)
        error = await expect_error(
            client.find_user_by_email("ivan.petrov@example.com"), errors.GetCourseBudgetExhausted
        )
        assert error.retry_after == pytest.approx(TWO_HOURS - 60)
        assert len(standin.requests) == 3  # refused before anything was sent

        # Once the window has passed, spending is allowed again.
        clock.now += TWO_HOURS
        standin.complete_exports()  # release the export abandoned above
        standin.not_ready_polls = 0
        user = await client.find_user_by_email("ivan.petrov@example.com")
        assert user is not None
        assert user.id == "187654321"
        assert await budget.used() == 2
        assert endpoints(standin)[3:] == ["users", "exports"]
    finally:
        await database.close()


async def test_budget_retry_after_counts_from_the_oldest_request(database: Database) -> None:
    clock = FakeClock(0.0)  # an injected clock may well start at zero
    budget = ExportBudget(database, 2, clock=clock)
    await budget.spend("start")
    clock.now = 100.0
    await budget.spend("poll")
    clock.now = 200.0

    with pytest.raises(errors.GetCourseBudgetExhausted) as caught:
        await budget.spend("poll")

    assert caught.value.retry_after == pytest.approx(TWO_HOURS - 200.0)
    assert await budget.used() == 2


# ----- one export at a time -------------------------------------------------------------------


async def test_concurrent_lookups_run_one_export_at_a_time(
    client: GetCourseClient, standin: GetCourseStandIn, budget: ExportBudget
) -> None:
    standin.not_ready_polls = 2

    ivan, anna = await asyncio.gather(
        client.find_user_by_email("ivan.petrov@example.com"),
        client.find_user_by_email("anna@example.org"),
    )

    assert ivan is not None
    assert ivan.id == "187654321"
    assert anna is not None
    assert anna.id == "187654322"
    assert 905 not in [r.error_code for r in standin.requests]
    assert standin.exports_started() == 2
    # The second export starts only after the first one was collected.
    assert endpoints(standin) == ["users", "exports", "exports", "exports"] * 2
    assert await budget.used() == len(standin.requests) == 8


# ----- parsing shapes the stand-in cannot produce (in-process transport) ---------------------

Answer = dict[str, Any]
START_OK: Answer = {"success": True, "info": {"export_id": 77}, "error": False}
NOT_READY: Answer = {"success": False, "error": True, "error_code": 909, "error_message": "x"}


def ready(fields: list[str], *rows: list[Any]) -> Answer:
    return {"success": True, "info": {"fields": fields, "items": list(rows)}}


class Script:
    """An in-process GetCourse: one start answer, then poll answers in order (last repeats)."""

    def __init__(self, start: Answer, *polls: Answer) -> None:
        self.start = start
        self.polls = list(polls)
        self.paths: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        assert request.url.params["key"] == KEY
        if request.url.path == "/pl/api/account/users":
            body = self.start
        else:
            assert request.url.path == "/pl/api/account/exports/77"
            body = self.polls.pop(0) if len(self.polls) > 1 else self.polls[0]
        return httpx.Response(200, content=json.dumps(body, ensure_ascii=False).encode())


async def find(script: Script, budget: ExportBudget, email: str) -> GetCourseUser | None:
    async with httpx.AsyncClient(
        base_url="https://school.getcourse.ru",
        transport=httpx.MockTransport(script),
        follow_redirects=False,
    ) as http:
        return await GetCourseClient(http, KEY, budget, FAST).find_user_by_email(email)


@pytest.mark.parametrize("title", ["Эл. почта", "e-mail", "E-Mail", " EMAIL "])
async def test_email_column_titles(budget: ExportBudget, title: str) -> None:
    # A partner's address comes first: only a recognised title leads to the right column.
    script = Script(
        START_OK,
        ready(
            ["id", "Email партнера", "Имя", title],
            ["5", "partner@example.com", "Иван", "Ivan@Example.com"],
        ),
    )

    user = await find(script, budget, "ivan@example.com")

    assert user is not None
    assert (user.id, user.email, user.first_name) == ("5", "ivan@example.com", "Иван")


async def test_email_found_by_at_sign_when_no_header_names_it(budget: ExportBudget) -> None:
    script = Script(
        START_OK,
        ready(["id", "Почта ученика", "Имя"], ["5", "ivan@example.com", "Иван"]),
    )

    user = await find(script, budget, "ivan@example.com")

    assert user is not None
    assert (user.id, user.email) == ("5", "ivan@example.com")


async def test_empty_email_column_does_not_fall_back_to_a_partner_email(
    budget: ExportBudget,
) -> None:
    """A user registered by phone has an empty Email; the "@" fallback must not then take the
    partner's address and hand the partner this user's GetCourse account."""
    script = Script(
        START_OK,
        ready(
            ["id", "Email", "Телефон", "Email партнера"],
            ["5", "", "+79160000000", "partner@example.com"],
        ),
    )

    assert await find(script, budget, "partner@example.com") is None


async def test_duplicated_column_title_does_not_shift_later_columns(budget: ExportBudget) -> None:
    # A custom field may repeat a standard title; the columns after it must stay aligned.
    script = Script(
        START_OK,
        ready(
            ["id", "Город", "Город", "Email", "Имя", "Телефон"],
            ["5", "Москва", "Казань", "ivan@example.com", "Иван", "+7916"],
        ),
    )

    user = await find(script, budget, "ivan@example.com")

    assert user is not None
    assert (user.id, user.email, user.first_name, user.phone) == (
        "5",
        "ivan@example.com",
        "Иван",
        "+7916",
    )


async def test_910_is_also_not_ready(budget: ExportBudget) -> None:
    script = Script(
        START_OK,
        {"success": False, "error": True, "error_code": 910, "error_message": "not yet"},
        ready(["id", "Email"], ["5", "ivan@example.com"]),
    )

    user = await find(script, budget, "ivan@example.com")

    assert user is not None
    assert user.id == "5"
    assert script.paths.count("/pl/api/account/exports/77") == 2


async def test_not_ready_told_only_by_the_message(budget: ExportBudget) -> None:
    script = Script(
        START_OK,
        {"success": False, "error": True, "error_message": "Файл еще не создан"},
        {"success": False, "error": True, "error_message": "Файл еще не создан"},
        ready(["id", "Email"], ["5", "ivan@example.com"]),
    )

    user = await find(script, budget, "ivan@example.com")

    assert user is not None
    assert script.paths.count("/pl/api/account/exports/77") == 3


async def test_unknown_error_while_polling_is_not_taken_for_not_ready(
    budget: ExportBudget,
) -> None:
    script = Script(START_OK, {"success": False, "error": True, "error_message": "Ошибка"})

    with pytest.raises(errors.GetCourseError):
        await find(script, budget, "ivan@example.com")
    assert len(script.paths) == 2


async def test_success_as_the_string_true(budget: ExportBudget) -> None:
    script = Script(
        {"success": "true", "info": {"export_id": "77"}},
        {"success": "true", "info": {"fields": ["id", "Email"], "items": [["5", "i@ex.com"]]}},
    )

    user = await find(script, budget, "i@ex.com")

    assert user is not None
    assert user.id == "5"


async def test_start_without_export_id_is_bad_response(budget: ExportBudget) -> None:
    script = Script({"success": True, "info": {}}, NOT_READY)

    await expect_error(find(script, budget, "ivan@example.com"), errors.GetCourseBadResponse)
    assert script.paths == ["/pl/api/account/users"]


async def test_success_without_items_is_bad_response(budget: ExportBudget) -> None:
    script = Script(START_OK, {"success": True, "info": {"fields": ["id", "Email"]}})

    await expect_error(find(script, budget, "ivan@example.com"), errors.GetCourseBadResponse)


async def test_null_cells_read_as_empty(budget: ExportBudget) -> None:
    script = Script(
        START_OK,
        ready(
            ["id", "Email", "Имя", "Фамилия", "Телефон", "Тариф"],
            [5, "ivan@example.com", None, "Петров", None, None],
        ),
    )

    user = await find(script, budget, "ivan@example.com")

    assert user == GetCourseUser(id="5", email="ivan@example.com", last_name="Петров")


async def test_row_shorter_than_header(budget: ExportBudget) -> None:
    script = Script(
        START_OK,
        ready(
            ["id", "Email", "Имя", "Фамилия", "Телефон", "Тариф"],
            ["5", "ivan@example.com", "Иван"],
        ),
    )

    user = await find(script, budget, "ivan@example.com")

    assert user == GetCourseUser(id="5", email="ivan@example.com", first_name="Иван")


# ----- busy, cut off, misconfigured, resumed -----------------------------------------------------


class RecordingNotifier:
    def __init__(self) -> None:
        self.events: list[OperatorEvent] = []

    def notify(self, notice: OperatorNotice) -> None:
        self.events.append(notice.event)


async def test_busy_start_is_retried_within_patience(
    client: GetCourseClient, standin: GetCourseStandIn
) -> None:
    standin.fail_next("users", error_code=905, times=2)

    user = await client.find_user_by_email("ivan.petrov@example.com")

    assert user is not None
    assert endpoints(standin) == ["users", "users", "users", "exports"]
    assert [r.error_code for r in standin.requests][:2] == [905, 905]


async def test_busy_beyond_patience_is_busy(
    http: httpx.AsyncClient, budget: ExportBudget, standin: GetCourseStandIn
) -> None:
    standin.fail_next("users", error_code=905, times=10**6)
    schedule = PollSchedule(first_delay=0.01, max_interval=0.02, give_up_after=0.1)
    client = GetCourseClient(http, KEY, budget, schedule)

    await expect_error(client.find_user_by_email("ivan.petrov@example.com"), errors.GetCourseBusy)
    assert set(endpoints(standin)) == {"users"}
    assert await budget.used() == len(standin.requests)


async def test_over_budget_903_pauses_all_export_traffic_across_restarts(
    tmp_path: Path, standin: GetCourseStandIn, http: httpx.AsyncClient
) -> None:
    path = tmp_path / "bot.sqlite3"
    clock = FakeClock(1_000_000.0)
    notifier = RecordingNotifier()
    standin.fail_next("users", error_code=903)
    database = await Database.open(path)
    try:
        budget = ExportBudget(database, 60, clock=clock)
        client = GetCourseClient(http, KEY, budget, FAST, notifier=notifier, clock=clock)
        await expect_error(
            client.find_user_by_email("ivan.petrov@example.com"), errors.GetCourseRateLimited
        )
        assert notifier.events == [OperatorEvent.GETCOURSE_BUDGET_EXHAUSTED]
    finally:
        await database.close()

    database = await Database.open(path)  # a restart does not resume hammering
    try:
        budget = ExportBudget(database, 60, clock=clock)
        client = GetCourseClient(http, KEY, budget, FAST, notifier=notifier, clock=clock)
        clock.now += TWO_HOURS - 1
        error = await expect_error(
            client.find_user_by_email("ivan.petrov@example.com"), errors.GetCourseBudgetExhausted
        )
        assert error.retry_after == pytest.approx(1)
        assert len(standin.requests) == 1  # nothing sent while paused

        clock.now += 1
        assert await client.find_user_by_email("ivan.petrov@example.com") is not None
    finally:
        await database.close()
    assert notifier.events == [OperatorEvent.GETCOURSE_BUDGET_EXHAUSTED]


async def test_misconfiguration_reaches_operators(
    http: httpx.AsyncClient, budget: ExportBudget, standin: GetCourseStandIn
) -> None:
    notifier = RecordingNotifier()
    client = GetCourseClient(http, KEY, budget, FAST, notifier=notifier)
    standin.fail_next("users", error_code=901)

    await expect_error(
        client.find_user_by_email("ivan.petrov@example.com"), errors.GetCourseConfigError
    )
    assert notifier.events == [OperatorEvent.GETCOURSE_MISCONFIGURED]


async def test_started_export_is_collected_later_instead_of_started_again(
    tmp_path: Path, standin: GetCourseStandIn, http: httpx.AsyncClient
) -> None:
    path = tmp_path / "bot.sqlite3"
    standin.not_ready_polls = 10**6
    patience = PollSchedule(first_delay=0.01, max_interval=0.02, give_up_after=0.1)
    database = await Database.open(path)
    try:
        client = GetCourseClient(http, KEY, ExportBudget(database, 100), patience)
        await expect_error(
            client.find_user_by_email("ivan.petrov@example.com"), errors.GetCourseExportTimeout
        )
    finally:
        await database.close()

    standin.not_ready_polls = 0
    standin.complete_exports()
    database = await Database.open(path)  # as after a restart
    try:
        client = GetCourseClient(http, KEY, ExportBudget(database, 100), FAST)
        user = await client.find_user_by_email("ivan.petrov@example.com")
    finally:
        await database.close()
    assert user is not None
    assert standin.exports_started() == 1  # collected by its saved export_id
    assert endpoints(standin)[-1] == "exports"


async def test_lookups_waiting_too_long_for_the_export_slot_are_busy(
    http: httpx.AsyncClient, budget: ExportBudget, standin: GetCourseStandIn
) -> None:
    standin.not_ready_polls = 10**6
    patience = PollSchedule(first_delay=0.01, max_interval=0.02, give_up_after=0.2)
    client = GetCourseClient(http, KEY, budget, patience)

    first, second = await asyncio.gather(
        client.find_user_by_email("ivan.petrov@example.com"),
        client.find_user_by_email("anna@example.org"),
        return_exceptions=True,
    )
    assert isinstance(first, errors.GetCourseExportTimeout)
    assert isinstance(second, errors.GetCourseBusy)
    assert standin.exports_started() == 1


async def test_two_hundred_people_at_once_never_exceed_the_ledger(
    http: httpx.AsyncClient, database: Database, standin: GetCourseStandIn
) -> None:
    budget = ExportBudget(database, 20)
    client = GetCourseClient(http, KEY, budget, FAST)
    emails = [user.email for user in USERS] * (200 // len(USERS) + 1)

    results = await asyncio.gather(
        *(client.find_user_by_email(email.lower()) for email in emails[:200]),
        return_exceptions=True,
    )

    assert standin.export_requests_in_window() == await budget.used() == 20
    # Ten people were looked up (a start and a poll each); everyone else was refused before
    # anything was sent, never answered "not found".
    assert sum(isinstance(r, GetCourseUser) for r in results) == 10
    assert sum(isinstance(r, errors.GetCourseBudgetExhausted) for r in results) == 190


async def test_the_first_poll_waits_for_the_build_not_for_reading_the_rows(
    standin: GetCourseStandIn, http: httpx.AsyncClient, budget: ExportBudget
) -> None:
    slow_store = 0.5  # storing a big window takes time; GetCourse built it at once
    delays: list[float] = []

    async def recorded_sleep(seconds: float) -> None:
        delays.append(seconds)
        await asyncio.sleep(seconds)

    async def store_slowly(users: list[GetCourseUser]) -> None:
        await asyncio.sleep(slow_store)

    client = GetCourseClient(http, KEY, budget, FAST, sleep=recorded_sleep)
    started: list[int] = []

    async def on_started(export_id: int) -> None:
        started.append(export_id)

    rows = await client.export_users(
        {"created_at[from]": "2024-01-01"},
        resume_export_id=None,
        on_started=on_started,
        sink=store_slowly,
    )
    assert (rows, len(started)) == (len(USERS), 1)
    delays.clear()

    assert await client.find_user_by_email("anna@example.org") is not None
    # Timed by how soon the window's export was ready, not by how long its rows took to store.
    assert delays[0] < slow_store


async def test_polls_start_close_together_and_restart_small_after_an_early_poll(
    standin: GetCourseStandIn, http: httpx.AsyncClient, budget: ExportBudget
) -> None:
    schedule = PollSchedule(first_delay=0.01, max_interval=1.0, growth=1.5, give_up_after=5.0)
    delays: list[float] = []

    async def recorded_sleep(seconds: float) -> None:
        delays.append(seconds)
        await asyncio.sleep(seconds)

    client = GetCourseClient(http, KEY, budget, schedule, sleep=recorded_sleep)
    standin.not_ready_polls = 3
    assert await client.find_user_by_email("anna@example.org") is not None
    # Nothing learned yet: the second poll comes as soon as the first, then the waits grow.
    assert delays == pytest.approx([0.01, 0.01, 0.015, 0.0225])

    delays.clear()
    standin.not_ready_polls = 1
    assert await client.find_user_by_email("ivan.petrov@example.com") is not None
    # The first poll waited for the learned build time and came too early: the next one
    # comes after the shortest wait, not after a grown interval.
    assert delays[0] >= sum([0.01, 0.01, 0.015, 0.0225])
    assert delays[1:] == pytest.approx([0.01])


# ----- streamed exports (what a directory sync reads) ------------------------------------------


class Sink:
    """Records the batches an export hands over, as a sync's store would receive them."""

    def __init__(self) -> None:
        self.batches: list[list[GetCourseUser]] = []

    async def __call__(self, users: list[GetCourseUser]) -> None:
        self.batches.append(users)

    @property
    def users(self) -> list[GetCourseUser]:
        return [user for batch in self.batches for user in batch]


async def no_save(export_id: int) -> None:
    pass


async def stream_from_standin(client: GetCourseClient, sink: Sink) -> int:
    return await client.export_users(
        {"created_at[from]": "2000-01-01"}, resume_export_id=None, on_started=no_save, sink=sink
    )


async def stream_answer(budget: ExportBudget, *chunks: bytes, sink: Sink | None = None) -> int:
    """A users export whose single poll answers ``chunks`` as they would arrive on the wire."""

    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/pl/api/account/users":
            return httpx.Response(200, json=START_OK)
        return httpx.Response(200, content=body())

    async with httpx.AsyncClient(
        base_url="https://school.getcourse.ru", transport=httpx.MockTransport(answer)
    ) as http:
        client = GetCourseClient(http, KEY, budget, FAST)
        return await client.export_users(
            {"created_at[from]": "2000-01-01"},
            resume_export_id=None,
            on_started=no_save,
            sink=sink or Sink(),
        )


def wire(answer: Answer, piece: int) -> list[bytes]:
    data = json.dumps(answer, ensure_ascii=False).encode()
    return [data[start : start + piece] for start in range(0, len(data), piece)]


async def test_a_large_export_reaches_the_sink_whole_in_order_and_in_small_batches(
    standin: GetCourseStandIn, client: GetCourseClient
) -> None:
    standin.users = [
        GetCourseUserRecord(
            id=500_000 + n,
            email=f"student{n}@example.com",
            first_name="Ученик",
            phone=f"+7900{n:07d}",
            created_at="2024-01-01 10:00:00",
            custom={"Тариф": "Базовый"},
        )
        for n in range(2500)
    ]
    standin.not_ready_polls = 2
    sink = Sink()

    count = await stream_from_standin(client, sink)

    assert count == 2500
    assert [user.id for user in sink.users] == [str(500_000 + n) for n in range(2500)]
    assert sink.users[1234] == GetCourseUser(
        id="501234",
        email="student1234@example.com",
        first_name="Ученик",
        phone="+79000001234",
        custom_fields={"Создан": "2024-01-01 10:00:00", "Тариф": "Базовый"},
    )
    # Each batch is one write of the sync on the database every lookup shares: kept small.
    assert max(len(batch) for batch in sink.batches) <= EXPORT_BATCH_ROWS
    assert [r.error_code for r in standin.requests] == [None, 909, 909, None]


@pytest.mark.parametrize("style", ["items", "error"])
async def test_a_streamed_export_that_matched_nobody_holds_no_users(
    standin: GetCourseStandIn, client: GetCourseClient, style: EmptyResultStyle
) -> None:
    standin.users = []
    standin.empty_result_style = style
    sink = Sink()

    assert await stream_from_standin(client, sink) == 0
    assert sink.batches == []
    assert endpoints(standin) == ["users", "exports"]


@pytest.mark.parametrize("piece", [7, 100_000])
async def test_a_streamed_answer_reads_the_same_however_it_is_cut(
    budget: ExportBudget, piece: int
) -> None:
    fields = ["id", "Email", "Имя", "Тариф"]
    rows = [[str(n), f"s{n}@example.com", "Имя", "Премиум"] for n in range(300)]
    sink = Sink()

    count = await stream_answer(budget, *wire(ready(fields, *rows), piece), sink=sink)

    assert count == 300
    assert sink.users[-1] == GetCourseUser(
        id="299", email="s299@example.com", first_name="Имя", custom_fields={"Тариф": "Премиум"}
    )


async def test_a_header_after_the_rows_still_reads_them(budget: ExportBudget) -> None:
    rows = [[str(n), "Иван", f"i{n}@ex.com"] for n in range(250)]
    answer = {"success": True, "info": {"items": rows, "fields": ["id", "Имя", "Email"]}}
    sink = Sink()

    assert await stream_answer(budget, *wire(answer, 1000), sink=sink) == 250
    assert sink.users[-1] == GetCourseUser(id="249", email="i249@ex.com", first_name="Иван")
    assert max(len(batch) for batch in sink.batches) <= EXPORT_BATCH_ROWS


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", errors.GetCourseBadResponse),
        (b"", errors.GetCourseBadResponse),
        (
            b'{"success": true, "info": {"fields": ["id", "Email"], "items": [["1", "a@b.c"], [',
            errors.GetCourseBadResponse,
        ),
        (b'{"success": true, "info": {"fields": ["id", "Email"]}}', errors.GetCourseBadResponse),
        (
            b'{"success": false, "error_code": 901, "error_message": "x"}',
            errors.GetCourseConfigError,
        ),
        (b'{"success": false, "error_code": 999, "error_message": "x"}', errors.GetCourseApiError),
        (b'["not", "an", "envelope"]', errors.GetCourseBadResponse),
        # Big enough not to be read whole as an envelope, yet no rows: not an export answer.
        (
            b'{"success": true, "info": {"fields": ["id"], "x": "' + b"y" * 100_000 + b'"}}',
            errors.GetCourseBadResponse,
        ),
    ],
)
async def test_a_streamed_answer_that_is_no_export_is_a_typed_error(
    budget: ExportBudget, body: bytes, error: type[errors.GetCourseError]
) -> None:
    sink = Sink()

    await expect_error(stream_answer(budget, body, sink=sink), error)
    assert sink.batches == []

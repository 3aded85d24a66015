"""The GetCourse stand-in, exercised over real HTTP on loopback."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any, cast

import httpx
import pytest

from sandbox.getcourse import GetCourseStandIn, GetCourseUserRecord
from sandbox.server import Fault

KEY = "secret-key-123"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _params(payload: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(payload, ensure_ascii=False).encode()).decode()


async def _get(client: httpx.AsyncClient, path: str, **params: str) -> dict[str, Any]:
    response = await client.get(path, params={"key": KEY, **params})
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def _import(client: httpx.AsyncClient, payload: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(
        "/pl/api/users", data={"action": "add", "key": KEY, "params": _params(payload)}
    )
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def gc() -> GetCourseStandIn:
    """The seeded account; the ``client`` fixture serves it for the test's duration."""
    return GetCourseStandIn.from_seed(api_key=KEY)


@pytest.fixture
async def client(gc: GetCourseStandIn) -> AsyncIterator[httpx.AsyncClient]:
    async with gc, httpx.AsyncClient(base_url=gc.base_url) as client:
        yield client


async def test_start_then_poll_gives_909_twice_then_rows_aligned_to_header(
    gc: GetCourseStandIn, client: httpx.AsyncClient
) -> None:
    gc.not_ready_polls = 2
    started = await _get(client, "/pl/api/account/users", email="ivan.petrov@example.com")
    assert started["success"] is True
    export_id = started["info"]["export_id"]
    assert isinstance(export_id, int)

    for _ in range(2):
        pending = await _get(client, f"/pl/api/account/exports/{export_id}")
        assert pending["success"] is False
        assert pending["error_code"] == 909
        assert pending["error_message"] == "Файл еще не создан"

    ready = await _get(client, f"/pl/api/account/exports/{export_id}")
    assert ready["success"] is True
    fields = ready["info"]["fields"]
    rows = [dict(zip(fields, item, strict=True)) for item in ready["info"]["items"]]
    assert rows == [
        {
            "id": "187654321",
            "Email": "ivan.petrov@example.com",
            "Тип регистрации": "",
            "Создан": "2024-03-01 10:15:00",
            "Последняя активность": "",
            "Имя": "Иван",
            "Фамилия": "Петров",
            "Телефон": "+79161234567",
            "Город": "Москва",
            "Telegram ID": "",
            "Тариф": "Базовый",
            "utm_source": "yandex",
            "utm_medium": "",
        }
    ]
    # Custom columns sit between the fixed ones, not at the end.
    assert fields.index("Город") < fields.index("Telegram ID") < fields.index("utm_source")
    assert fields.index("Тариф") < fields.index("utm_medium")
    assert all(isinstance(cell, str) for item in ready["info"]["items"] for cell in item)

    # A ready export can be collected again.
    assert await _get(client, f"/pl/api/account/exports/{export_id}") == ready
    assert gc.exports_started() == 1
    assert [r.error_code for r in gc.requests] == [None, 909, 909, None, None]


async def test_email_filter_is_case_insensitive_and_accepts_a_list(
    gc: GetCourseStandIn, client: httpx.AsyncClient
) -> None:
    started = await _get(
        client,
        "/pl/api/account/users",
        email="maria.sidorova@EXAMPLE.com, Anna@Example.org",
        type="admin",
    )
    ready = await _get(client, f"/pl/api/account/exports/{started['info']['export_id']}")
    emails = {item[ready["info"]["fields"].index("Email")] for item in ready["info"]["items"]}
    # The stored spelling comes back, whatever case the filter used.
    assert emails == {"Maria.Sidorova@Example.com", "anna@example.org"}


async def test_status_and_date_filters(gc: GetCourseStandIn, client: httpx.AsyncClient) -> None:
    bad = await _get(client, "/pl/api/account/users", status="paid")
    assert bad["error_code"] == 914
    assert "active,deactivated,banned,invited,in_base" in bad["error_message"]

    started = await _get(
        client,
        "/pl/api/account/users",
        status="active",
        **{"created_at[from]": "2025-01-15", "created_at[to]": "2025-05-25"},
    )
    ready = await _get(client, f"/pl/api/account/exports/{started['info']['export_id']}")
    ids = [item[0] for item in ready["info"]["items"]]
    assert ids == ["187654328", "187654329", "187654331"]

    # The status alone is a filter (no 908): how a directory sync learns who is banned.
    for status, expected in (("banned", ["187654326"]), ("deactivated", ["187654325"])):
        started = await _get(client, "/pl/api/account/users", status=status)
        ready = await _get(client, f"/pl/api/account/exports/{started['info']['export_id']}")
        assert [item[0] for item in ready["info"]["items"]] == expected


async def test_no_recognised_filter_is_908(gc: GetCourseStandIn, client: httpx.AsyncClient) -> None:
    body = await _get(client, "/pl/api/account/users", type="admin")
    assert body["success"] is False
    assert body["error_code"] == 908
    assert body["error_message"] == "Должен быть передан хотя бы один фильтр"
    assert gc.exports_started() == 0
    # A refused request with the right key still costs budget.
    assert gc.requests[-1].counted is True
    assert gc.export_requests_in_window() == 1


async def test_second_start_while_building_is_905_until_ready(
    gc: GetCourseStandIn, client: httpx.AsyncClient
) -> None:
    gc.not_ready_polls = 1
    first = await _get(client, "/pl/api/account/users", status="active")
    busy = await _get(client, "/pl/api/account/users", status="banned")
    assert busy["error_code"] == 905
    assert busy["error_message"] == "Уже запущен один экспорт, попробуйте позднее"
    assert gc.exports_started() == 1

    export_id = first["info"]["export_id"]
    assert (await _get(client, f"/pl/api/account/exports/{export_id}"))["error_code"] == 909
    assert (await _get(client, f"/pl/api/account/exports/{export_id}"))["success"] is True

    again = await _get(client, "/pl/api/account/users", status="banned")
    assert again["success"] is True
    assert gc.exports_started() == 2


async def test_budget_exhausted_gives_903_until_the_window_clears() -> None:
    clock = FakeClock()
    async with (
        GetCourseStandIn.from_seed(api_key=KEY, budget=3, window_seconds=7200, clock=clock) as gc,
        httpx.AsyncClient(base_url=gc.base_url) as client,
    ):
        for _ in range(3):
            assert (await _get(client, "/pl/api/account/groups"))["success"] is True
            clock.now += 10
        refused = await _get(client, "/pl/api/account/users", status="active")
        assert refused["error_code"] == 903
        assert refused["error_message"].startswith("Слишком много запросов")
        assert gc.exports_started() == 0  # not executed
        assert gc.export_requests_in_window() == 3

        # Imports do not spend the export budget.
        assert (await _import(client, {"user": {"email": "new@example.com"}}))["success"] is True

        clock.now += 7200 - 30  # the first request (at t=1000) has just left the window
        assert gc.export_requests_in_window() == 2
        started = await _get(client, "/pl/api/account/users", status="active")
        assert started["success"] is True
        assert [r.counted for r in gc.requests] == [True, True, True, False, False, True]


async def test_wrong_and_missing_key(gc: GetCourseStandIn, client: httpx.AsyncClient) -> None:
    wrong = (await client.get("/pl/api/account/groups", params={"key": "nope"})).json()
    assert wrong == {
        "success": False,
        "error": True,
        "error_code": 901,
        "error_message": "Неавторизованное API-обращение",
        "info": [],
    }
    missing = (await client.get("/pl/api/account/users", params={"status": "active"})).json()
    assert missing["error_code"] == 904
    assert gc.export_requests_in_window() == 0


async def test_empty_result_styles(gc: GetCourseStandIn, client: httpx.AsyncClient) -> None:
    started = await _get(client, "/pl/api/account/users", email="nobody@example.com")
    ready = await _get(client, f"/pl/api/account/exports/{started['info']['export_id']}")
    assert ready["success"] is True
    assert ready["info"]["items"] == []
    assert "Email" in ready["info"]["fields"]

    gc.empty_result_style = "error"
    started = await _get(client, "/pl/api/account/users", email="nobody@example.com")
    empty = await _get(client, f"/pl/api/account/exports/{started['info']['export_id']}")
    assert empty == {
        "success": False,
        "error": True,
        "error_message": "Файл не создан, попробуйте другой фильтр",
    }

    unknown = await _get(client, "/pl/api/account/exports/1")
    assert unknown["error_message"] == "Объект не найден"
    assert "error_code" not in unknown


async def test_email_filter_ignored_returns_everyone(
    gc: GetCourseStandIn, client: httpx.AsyncClient
) -> None:
    gc.email_filter_ignored = True
    started = await _get(client, "/pl/api/account/users", email="anna@example.org")
    ready = await _get(client, f"/pl/api/account/exports/{started['info']['export_id']}")
    assert len(ready["info"]["items"]) == len(gc.users) == 12


async def test_an_unknown_email_filter_is_908_alone_and_ignored_with_dates(
    gc: GetCourseStandIn, client: httpx.AsyncClient
) -> None:
    gc.email_filter_unknown = True
    alone = await _get(client, "/pl/api/account/users", email="anna@example.org")
    assert alone["error_code"] == 908
    started = await _get(
        client,
        "/pl/api/account/users",
        email="anna@example.org",
        **{"created_at[from]": "2025-01-01", "created_at[to]": "2025-12-31"},
    )
    ready = await _get(client, f"/pl/api/account/exports/{started['info']['export_id']}")
    assert len(ready["info"]["items"]) == 6  # the whole window: the email was ignored


async def test_undocumented_statuses_can_answer_914(
    gc: GetCourseStandIn, client: httpx.AsyncClient
) -> None:
    gc.documented_statuses_only = True
    for status in ("banned", "deactivated", "invited"):
        refused = await _get(client, "/pl/api/account/users", status=status)
        assert refused["error_code"] == 914
    started = await _get(client, "/pl/api/account/users", status="in_base")
    ready = await _get(client, f"/pl/api/account/exports/{started['info']['export_id']}")
    assert [item[0] for item in ready["info"]["items"]] == ["187654324", "187654330"]


async def test_created_at_to_can_be_exclusive(
    gc: GetCourseStandIn, client: httpx.AsyncClient
) -> None:
    window = {"created_at[from]": "2025-04-18", "created_at[to]": "2025-05-25"}

    async def ids() -> list[str]:
        started = await _get(client, "/pl/api/account/users", **window)
        ready = await _get(client, f"/pl/api/account/exports/{started['info']['export_id']}")
        return [item[0] for item in ready["info"]["items"]]

    assert await ids() == ["187654330", "187654331"]
    gc.created_to_exclusive = True
    assert await ids() == ["187654330"]  # registered on the "to" day: left out


async def test_import_creates_then_updates_only_with_refresh_if_exists(
    gc: GetCourseStandIn, client: httpx.AsyncClient
) -> None:
    created = await _import(
        client, {"user": {"email": "New.Person@example.com", "first_name": "Пётр"}}
    )
    assert created["success"] is True
    assert created["action"] == "add"
    assert created["result"]["user_status"] == "added"
    new_user = gc.user_by_email("new.person@example.com")
    assert new_user is not None
    assert new_user.id == created["result"]["user_id"]

    update = {"user": {"email": "MARIA.SIDOROVA@example.com", "addfields": {"Telegram ID": 42}}}
    untouched = await _import(client, update)
    maria = gc.user_by_email("maria.sidorova@example.com")
    assert maria is not None
    assert untouched["result"]["user_id"] == maria.id
    assert "Telegram ID" not in maria.custom

    refreshed = await _import(
        client,
        {
            "user": {
                "email": "maria.sidorova@example.com",
                "city": "Уфа",
                "addfields": {"Telegram ID": "987654321", "telegram id": "dropped"},
            },
            "system": {"refresh_if_exists": 1},
        },
    )
    assert refreshed["result"] == {
        "success": True,
        "user_id": maria.id,
        "user_status": "updated",
        "error": False,
        "error_message": "",
    }
    assert maria.custom == {"Тариф": "Стандарт", "Telegram ID": "987654321"}
    assert maria.city == "Уфа"
    assert maria.first_name == "Мария"  # omitted fields are kept
    assert len(gc.users) == 13
    assert gc.imports[0] == {"user": {"email": "New.Person@example.com", "first_name": "Пётр"}}


async def test_import_rejections(gc: GetCourseStandIn, client: httpx.AsyncClient) -> None:
    nobody = await _import(client, {"user": {"first_name": "Без контактов"}})
    assert nobody["success"] is True
    assert nobody["result"]["error"] is True
    assert nobody["result"]["error_message"] == "Не указан ни эл. адрес, ни телефон"

    no_action = (await client.get("/pl/api/users")).json()
    assert no_action == {"success": False, "error": "Пустой параметр action"}
    assert len(gc.users) == 12


async def test_redirect_answers_301_with_location(
    gc: GetCourseStandIn, client: httpx.AsyncClient
) -> None:
    gc.redirect_to("https://school.example.com/")
    response = await client.get("/pl/api/account/users", params={"key": KEY, "status": "active"})
    assert response.status_code == 301
    assert response.headers["Location"].startswith(
        "https://school.example.com/pl/api/account/users?"
    )
    assert gc.exports_started() == 0

    gc.redirect_to(None)
    gc.wrong_subdomain = True
    response = await client.get("/pl/api/account/groups", params={"key": KEY})
    assert response.status_code == 404
    assert response.text == "Wrong subdomain"


async def test_faults_and_fail_next(gc: GetCourseStandIn, client: httpx.AsyncClient) -> None:
    gc.faults.add("groups", Fault(status=500, body="<html>oops</html>"))
    response = await client.get("/pl/api/account/groups", params={"key": KEY})
    assert response.status_code == 500

    gc.fail_next("users", error_code=905, times=2)
    for _ in range(2):
        busy = await _get(client, "/pl/api/account/users", status="active")
        assert busy["error_code"] == 905
    assert (await _get(client, "/pl/api/account/users", status="active"))["success"] is True
    assert [r.error_code for r in gc.requests] == [None, 905, 905, None]

    with pytest.raises(ValueError, match="999"):
        gc.fail_next("users", error_code=999)


async def test_recorded_requests_never_contain_the_key(
    gc: GetCourseStandIn, client: httpx.AsyncClient
) -> None:
    await _get(client, "/pl/api/account/users", status="active")
    await client.post("/pl/api/account/exports/1", data={"key": KEY})
    await _import(client, {"user": {"email": "x@example.com"}})
    await client.post("/pl/api/account/fields", data={"action": "get", "key": "wrong"})

    assert [r.endpoint for r in gc.requests] == ["users", "exports", "import", "fields"]
    assert gc.requests[0].params == {"status": "active"}
    assert gc.requests[3].error_code == 901
    for record in gc.requests:
        assert "key" not in record.params
        assert KEY not in repr(record)


def test_add_user_rejects_duplicates_and_bad_status() -> None:
    gc = GetCourseStandIn(api_key=KEY)
    gc.add_user(GetCourseUserRecord(id=1, email="a@example.com", created_at="2024-01-01 00:00:00"))
    with pytest.raises(ValueError, match="duplicate"):
        gc.add_user(GetCourseUserRecord(id=2, email="A@Example.com"))
    with pytest.raises(ValueError, match="status"):
        GetCourseUserRecord(id=3, email="c@example.com", status=cast(Any, "paid"))

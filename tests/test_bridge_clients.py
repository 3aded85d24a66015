"""The two new external calls of issue 13 against the stand-ins over loopback HTTP: the GetCourse
import API writing additional fields (and every way its answer can go wrong), and Salebot's
``callback``, which is retried only when it surely did not land."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from sandbox.server import Fault
from services.errors import (
    GetCourseApiError,
    GetCourseBadResponse,
    GetCourseBudgetExhausted,
    GetCourseConfigError,
    GetCourseFieldRejected,
    GetCourseUnavailable,
    GetCourseUserMismatch,
    SalebotCallbackUncertain,
    SalebotClientNotFound,
    SalebotUnavailable,
)
from services.getcourse.budget import ExportBudget, ImportBudget
from services.getcourse.import_api import GetCourseImportClient
from services.salebot.client import SalebotClient
from services.storage.database import Database
from tests.conftest import FUNNEL_BOT, GETCOURSE_KEY, SALEBOT_KEY, StandIns, free_port

IVAN_EMAIL = "ivan.petrov@example.com"
IVAN_GC = "187654321"
IVAN_CLIENT = 836058541


@pytest.fixture
async def importer(
    standins: StandIns, database: Database
) -> AsyncIterator[tuple[GetCourseImportClient, ImportBudget]]:
    budget = ImportBudget(database, limit=3)
    async with httpx.AsyncClient(base_url=standins.getcourse.base_url) as http:
        yield GetCourseImportClient(http, GETCOURSE_KEY, budget), budget


async def test_fields_are_written_for_the_users_email_only(
    standins: StandIns, importer: tuple[GetCourseImportClient, ImportBudget], database: Database
) -> None:
    client, budget = importer
    standins.getcourse.custom_fields.append("telegram_id")

    await client.update_fields(IVAN_EMAIL, IVAN_GC, {"telegram_id": "100000001"})

    user = standins.getcourse.user_by_email(IVAN_EMAIL)
    assert user is not None
    assert user.custom["telegram_id"] == "100000001"
    [request] = [r for r in standins.getcourse.requests if r.endpoint == "import"]
    assert (request.method, request.params["action"]) == ("POST", "add")
    assert standins.getcourse.imports == [
        {
            "user": {"email": IVAN_EMAIL, "addfields": {"telegram_id": "100000001"}},
            "system": {"refresh_if_exists": 1},
        }
    ]
    # Its own ledger; the export budget is untouched.
    assert await budget.used() == 1
    assert await ExportBudget(database, 60).used() == 0


async def test_the_import_ledger_refuses_before_anything_is_sent(
    standins: StandIns, importer: tuple[GetCourseImportClient, ImportBudget]
) -> None:
    client, _ = importer
    for _ in range(3):
        await client.update_fields(IVAN_EMAIL, IVAN_GC, {"telegram_id": "1"})
    with pytest.raises(GetCourseBudgetExhausted):
        await client.update_fields(IVAN_EMAIL, IVAN_GC, {"telegram_id": "1"})
    assert sum(1 for r in standins.getcourse.requests if r.endpoint == "import") == 3


async def test_an_answer_for_another_user_is_an_error(
    standins: StandIns, importer: tuple[GetCourseImportClient, ImportBudget]
) -> None:
    client, _ = importer
    with pytest.raises(GetCourseUserMismatch, match="187654322"):
        # The link says 187654322, but this email is 187654321's now.
        await client.update_fields(IVAN_EMAIL, "187654322", {"telegram_id": "1"})


@pytest.mark.parametrize(
    ("setup", "error", "message"),
    [
        ("unknown_field", GetCourseFieldRejected, "telegram_id"),
        ("no_import", GetCourseConfigError, "empty body"),
        ("http_500", GetCourseUnavailable, "HTTP 500"),
        ("html", GetCourseBadResponse, "HTML"),
        ("wrong_key", GetCourseApiError, "Неавторизованное"),
        ("forbidden", GetCourseConfigError, "import rights"),
    ],
)
async def test_each_failed_answer_is_a_typed_error(
    standins: StandIns,
    importer: tuple[GetCourseImportClient, ImportBudget],
    setup: str,
    error: type[Exception],
    message: str,
) -> None:
    client, _ = importer
    getcourse = standins.getcourse
    if setup == "unknown_field":
        getcourse.unknown_field_answer = "error"
    elif setup == "no_import":
        getcourse.import_enabled = False
    elif setup == "http_500":
        getcourse.faults.add("import", Fault(status=500, body="Internal Server Error"))
    elif setup == "html":
        getcourse.faults.add("import", Fault(status=200, body="<html>login</html>"))
    elif setup == "wrong_key":
        getcourse.api_key = "another-key"
    else:
        body = {"success": False, "error": "Действие запрещено"}
        getcourse.faults.add("import", Fault(json_body=body))
    with pytest.raises(error, match=message):
        await client.update_fields(IVAN_EMAIL, IVAN_GC, {"telegram_id": "1"})
    user = getcourse.user_by_email(IVAN_EMAIL)
    assert user is not None
    assert "telegram_id" not in user.custom


async def callback_client(base_url: str) -> tuple[httpx.AsyncClient, SalebotClient]:
    http = httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(2.0))
    return http, SalebotClient(http, SALEBOT_KEY, FUNNEL_BOT)


async def test_a_callback_lands_once(standins: StandIns) -> None:
    http, salebot = await callback_client(standins.salebot.base_url)
    async with http:
        await salebot.callback(IVAN_CLIENT, "gc_paid")
    assert standins.salebot.callbacks == [
        {"client_id": IVAN_CLIENT, "message": "gc_paid", "variables": {}}
    ]


async def test_a_callback_answered_with_an_empty_body_has_landed(standins: StandIns) -> None:
    standins.salebot.faults.add("callback", Fault(status=200, body=""))
    http, salebot = await callback_client(standins.salebot.base_url)
    async with http:
        await salebot.callback(IVAN_CLIENT, "gc_paid")


async def test_callback_failures_say_whether_it_may_have_landed(standins: StandIns) -> None:
    http, salebot = await callback_client(standins.salebot.base_url)
    async with http:
        standins.salebot.fail_next("callback", status=500)
        with pytest.raises(SalebotCallbackUncertain):
            await salebot.callback(IVAN_CLIENT, "gc_paid")
        standins.salebot.delay_next("callback", 3.0)
        with pytest.raises(SalebotCallbackUncertain):
            await salebot.callback(IVAN_CLIENT, "gc_paid")
        standins.salebot.fail_next("callback", status=429)
        with pytest.raises(SalebotUnavailable):
            await salebot.callback(IVAN_CLIENT, "gc_paid")
        with pytest.raises(SalebotClientNotFound):
            await salebot.callback(999, "gc_paid")
    # Nobody listens there: the request never left, so it is safe to send again.
    refused_http, refused = await callback_client(f"http://127.0.0.1:{free_port()}")
    async with refused_http:
        with pytest.raises(SalebotUnavailable):
            await refused.callback(IVAN_CLIENT, "gc_paid")

"""SalebotClient against the Salebot stand-in over real HTTP on loopback (and, where the
stand-in cannot produce an answer, an httpx.MockTransport)."""

from __future__ import annotations

import json
import socket
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from sandbox.salebot import NoClientAnswer, SalebotClientRecord, SalebotStandIn, SavedAnswer
from sandbox.server import Fault
from services.errors import (
    SalebotBadResponse,
    SalebotClientNotFound,
    SalebotError,
    SalebotRejected,
    SalebotUnavailable,
)
from services.salebot.client import SalebotClient

API_KEY = "sb-secret-key-0123456789abcdef"
BOT = "school_funnel_bot"
VK_GROUP = "123456"
TELEGRAM_ID = 7_000_000_001  # above 2**31, as real Telegram ids are
TG_CLIENT_ID = 836_058_700
VK_CLIENT_ID = 512_000_001  # lower than the Telegram client's id, so "lowest id" cannot win
OTHER_CLIENT_ID = 836_058_701
TIMEOUT = 0.3  # seconds; every scripted delay is longer

FIND = "find_client_id_by_platform_id"

Call = Callable[[SalebotClient], Awaitable[object]]


def _records() -> list[SalebotClientRecord]:
    return [
        SalebotClientRecord(
            id=TG_CLIENT_ID,
            platform_id=str(TELEGRAM_ID),
            group=BOT,
            client_variables={"tg_username": "@ivan"},
        ),
        # A VK user whose id happens to equal the Telegram id.
        SalebotClientRecord(
            id=VK_CLIENT_ID,
            platform_id=str(TELEGRAM_ID),
            group=VK_GROUP,
            client_type=0,
            client_variables={"email": "vk@example.com"},
        ),
        SalebotClientRecord(
            id=OTHER_CLIENT_ID,
            platform_id="7000000002",
            group=BOT,
            # A project variable literally called "status", next to others.
            client_variables={"status": "fail", "tg_username": "@olga"},
        ),
    ]


@pytest.fixture
async def standin() -> AsyncIterator[SalebotStandIn]:
    async with SalebotStandIn(api_key=API_KEY, clients=_records()) as stand_in:
        yield stand_in


@pytest.fixture
async def http(standin: SalebotStandIn) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=standin.base_url, timeout=TIMEOUT) as client:
        yield client


@pytest.fixture
def salebot(http: httpx.AsyncClient) -> SalebotClient:
    return SalebotClient(http, API_KEY, BOT)


MockSalebot = Callable[[Any], tuple[SalebotClient, list[httpx.Request]]]


@pytest.fixture
async def mock_salebot() -> AsyncIterator[MockSalebot]:
    """Makes clients whose every request gets ``answer`` as JSON (with the requests seen), for
    answers the stand-in never gives."""
    opened: list[httpx.AsyncClient] = []

    def make(answer: Any) -> tuple[SalebotClient, list[httpx.Request]]:
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, json=answer)

        http = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://sb.test")
        opened.append(http)
        return SalebotClient(http, API_KEY, BOT), seen

    yield make
    for http in opened:
        await http.aclose()


def _match(client_id: int, platform_id: str | int, group: str | int) -> dict[str, Any]:
    return {
        "id": client_id,
        "tag": None,
        "created_at": 1718000000,
        "name": "x",
        "avatar": None,
        "platform_id": platform_id,
        "group": group,
        "variables": {},
    }


def _assert_key_hidden(error: BaseException) -> None:
    """Neither the message nor the whole chain (what a log with exc_info would show)."""
    assert API_KEY not in str(error)
    assert API_KEY not in "".join(traceback.format_exception(error))


# -- find_client_id ----------------------------------------------------------------------------


async def test_find_client_id_sends_string_ids_and_group_and_skips_the_vk_look_alike(
    standin: SalebotStandIn, salebot: SalebotClient, http: httpx.AsyncClient
) -> None:
    # The look-alike is real: without group_id the stand-in returns it as well.
    unfiltered = await http.post(
        f"/api/{API_KEY}/{FIND}", json={"platform_ids": [str(TELEGRAM_ID)]}
    )
    assert {item["id"] for item in unfiltered.json()} == {TG_CLIENT_ID, VK_CLIENT_ID}
    standin.requests.clear()

    assert await salebot.find_client_id(TELEGRAM_ID) == TG_CLIENT_ID

    [request] = standin.requests_of(FIND)
    assert request.method == "POST"
    assert request.body == {"platform_ids": ["7000000001"], "group_id": BOT}
    assert API_KEY not in request.path


async def test_find_client_id_filters_the_answer_on_group_and_platform_id(
    mock_salebot: MockSalebot,
) -> None:
    # Salebot ignoring group_id: the answer mixes the VK client, another person and ours.
    salebot, seen = mock_salebot(
        [
            _match(VK_CLIENT_ID, TELEGRAM_ID, int(VK_GROUP)),  # numbers, as VK ids may come
            _match(1, "7000000099", BOT),
            _match(TG_CLIENT_ID, str(TELEGRAM_ID), BOT),
        ]
    )

    assert await salebot.find_client_id(TELEGRAM_ID) == TG_CLIENT_ID
    assert json.loads(seen[0].content) == {"platform_ids": ["7000000001"], "group_id": BOT}


async def test_find_client_id_with_only_foreign_matches_is_not_found(
    mock_salebot: MockSalebot,
) -> None:
    salebot, _ = mock_salebot([_match(VK_CLIENT_ID, str(TELEGRAM_ID), VK_GROUP)])

    with pytest.raises(SalebotClientNotFound):
        await salebot.find_client_id(TELEGRAM_ID)


async def test_find_client_id_empty_array_is_not_found(
    standin: SalebotStandIn, salebot: SalebotClient
) -> None:
    with pytest.raises(SalebotClientNotFound) as caught:
        await salebot.find_client_id(7_000_000_404)

    assert standin.requests_of(FIND)[0].status == 200  # the stand-in answered []
    _assert_key_hidden(caught.value)


@pytest.mark.parametrize("shape", ["http_404", "status_object"])
async def test_find_client_id_other_no_match_shapes_are_not_found(
    standin: SalebotStandIn, salebot: SalebotClient, shape: NoClientAnswer
) -> None:
    standin.no_client_answer = shape

    with pytest.raises(SalebotClientNotFound) as caught:
        await salebot.find_client_id(7_000_000_404)

    assert standin.requests_of(FIND)[0].status == (404 if shape == "http_404" else 200)
    _assert_key_hidden(caught.value)
    # The switch changes only the no-match answer.
    assert await salebot.find_client_id(TELEGRAM_ID) == TG_CLIENT_ID


@pytest.mark.parametrize("status", [400, 404, 410, 422])
async def test_find_client_id_any_4xx_but_a_key_refusal_is_not_found(
    standin: SalebotStandIn, salebot: SalebotClient, status: int
) -> None:
    standin.fail_next(FIND, status=status)  # an HTML page, not JSON

    with pytest.raises(SalebotClientNotFound):
        await salebot.find_client_id(TELEGRAM_ID)


@pytest.mark.parametrize(
    "answer",
    [{"status": "success"}, {"status": "fail", "message": "x"}, {"status": "client_not_found"}],
)
async def test_find_client_id_status_object_without_clients_is_not_found(
    mock_salebot: MockSalebot, answer: dict[str, str]
) -> None:
    salebot, _ = mock_salebot(answer)

    with pytest.raises(SalebotClientNotFound):
        await salebot.find_client_id(TELEGRAM_ID)


async def test_find_client_id_status_object_with_clients_reads_them(
    mock_salebot: MockSalebot,
) -> None:
    salebot, _ = mock_salebot(
        {"status": "success", "clients": [_match(TG_CLIENT_ID, str(TELEGRAM_ID), BOT)]}
    )

    assert await salebot.find_client_id(TELEGRAM_ID) == TG_CLIENT_ID


async def test_find_client_id_several_matches_takes_the_lowest_id(
    standin: SalebotStandIn, salebot: SalebotClient
) -> None:
    first = standin.add_client(7_000_000_555)
    standin.add_client(7_000_000_555)

    assert await salebot.find_client_id(7_000_000_555) == first.id


async def test_find_client_id_matches_the_bot_username_whatever_its_case(
    mock_salebot: MockSalebot,
) -> None:
    salebot, _ = mock_salebot([_match(TG_CLIENT_ID, str(TELEGRAM_ID), BOT.upper())])

    assert await salebot.find_client_id(TELEGRAM_ID) == TG_CLIENT_ID


async def test_find_client_id_several_matches_lowest_id_whatever_the_order(
    mock_salebot: MockSalebot,
) -> None:
    salebot, _ = mock_salebot(
        [_match(900, str(TELEGRAM_ID), BOT), _match(300, str(TELEGRAM_ID), BOT)]
    )

    assert await salebot.find_client_id(TELEGRAM_ID) == 300


async def test_find_client_id_answer_that_is_not_a_list_is_a_bad_response(
    mock_salebot: MockSalebot,
) -> None:
    salebot, _ = mock_salebot({"clients": []})

    with pytest.raises(SalebotBadResponse):
        await salebot.find_client_id(TELEGRAM_ID)


# -- save_variables / get_variables --------------------------------------------------------------


async def test_save_variables_with_client_prefix_lands_in_client_variables_as_strings(
    standin: SalebotStandIn, salebot: SalebotClient
) -> None:
    await salebot.save_variables(
        TG_CLIENT_ID,
        {
            "client.email": "ivan@example.com",
            "client.gc_user_id": "123456789",
            "client.telegram_id": str(TELEGRAM_ID),
        },
    )

    assert standin.client_variables(TG_CLIENT_ID) == {
        "tg_username": "@ivan",
        "email": "ivan@example.com",
        "gc_user_id": "123456789",
        "telegram_id": "7000000001",
    }
    assert standin.deal_variables(TG_CLIENT_ID) == {}
    [request] = standin.requests_of("save_variables")
    assert request.method == "POST"
    assert request.body["client_id"] == TG_CLIENT_ID
    assert all(isinstance(value, str) for value in request.body["variables"].values())


@pytest.mark.parametrize("shape", ["flat", "nested"])
async def test_get_variables_reads_back_saved_variables(
    standin: SalebotStandIn, salebot: SalebotClient, shape: str
) -> None:
    standin.variables_shape = "flat" if shape == "flat" else "nested"
    await salebot.save_variables(
        TG_CLIENT_ID, {"client.email": "ivan@example.com", "client.gc_user_id": "42"}
    )

    variables = await salebot.get_variables(TG_CLIENT_ID)

    assert variables["email"] == "ivan@example.com"
    assert variables["gc_user_id"] == "42"
    assert variables["tg_username"] == "@ivan"
    assert "variables" not in variables  # the nested dict was unwrapped, not returned as is
    [request] = standin.requests_of("get_variables")
    assert request.method == "GET"
    assert request.query == {"client_id": str(TG_CLIENT_ID)}


@pytest.mark.parametrize("shape", ["flat", "nested"])
async def test_project_variable_called_status_is_not_an_error(
    standin: SalebotStandIn, salebot: SalebotClient, shape: str
) -> None:
    standin.variables_shape = "flat" if shape == "flat" else "nested"

    variables = await salebot.get_variables(OTHER_CLIENT_ID)

    assert variables["status"] == "fail"
    assert variables["tg_username"] == "@olga"


@pytest.mark.parametrize(
    "answer",
    [{"status": "fail", "message": "Something went wrong"}, {"status": "error"}],
)
async def test_get_variables_error_answer_is_not_read_as_variables(
    mock_salebot: MockSalebot, answer: dict[str, str]
) -> None:
    salebot, _ = mock_salebot(answer)

    with pytest.raises(SalebotRejected):
        await salebot.get_variables(TG_CLIENT_ID)


@pytest.mark.parametrize("shape", ["empty", "text"])
async def test_save_variables_2xx_with_an_empty_or_non_json_body_has_landed(
    standin: SalebotStandIn, salebot: SalebotClient, shape: SavedAnswer
) -> None:
    standin.saved_answer = shape

    await salebot.save_variables(TG_CLIENT_ID, {"client.email": "x@example.com"})

    assert standin.client_variables(TG_CLIENT_ID)["email"] == "x@example.com"
    assert standin.requests_of("save_variables")[-1].status == 200


async def test_save_variables_error_page_is_not_a_landed_write(
    standin: SalebotStandIn, salebot: SalebotClient
) -> None:
    standin.fail_next("save_variables", status=400)  # HTML, not JSON

    with pytest.raises(SalebotBadResponse):
        await salebot.save_variables(TG_CLIENT_ID, {"client.email": "x@example.com"})


async def test_save_variables_unknown_client_is_not_found(salebot: SalebotClient) -> None:
    with pytest.raises(SalebotClientNotFound):
        await salebot.save_variables(999, {"client.email": "x@example.com"})


async def test_get_variables_unknown_client_is_not_found(salebot: SalebotClient) -> None:
    with pytest.raises(SalebotClientNotFound):
        await salebot.get_variables(999)


@pytest.mark.parametrize("shape", ["flat", "nested"])
async def test_client_not_found_answer_for_a_known_client(
    standin: SalebotStandIn, salebot: SalebotClient, shape: str
) -> None:
    standin.variables_shape = "flat" if shape == "flat" else "nested"
    standin.answer_client_not_found("save_variables")
    standin.answer_client_not_found("get_variables")

    with pytest.raises(SalebotClientNotFound):
        await salebot.save_variables(TG_CLIENT_ID, {"client.email": "x@example.com"})
    with pytest.raises(SalebotClientNotFound):
        await salebot.get_variables(TG_CLIENT_ID)

    assert "email" not in standin.client_variables(TG_CLIENT_ID)


# -- errors ------------------------------------------------------------------------------------

CALLS: dict[str, tuple[str, Call]] = {
    "find": (FIND, lambda sb: sb.find_client_id(TELEGRAM_ID)),
    "save": ("save_variables", lambda sb: sb.save_variables(TG_CLIENT_ID, {"client.a": "1"})),
    "get": ("get_variables", lambda sb: sb.get_variables(TG_CLIENT_ID)),
    "channels": ("connected_channels", lambda sb: sb.connected_channels()),
}
call_names = pytest.mark.parametrize("call_name", list(CALLS))


async def _fails_with(
    salebot: SalebotClient, call_name: str, error_type: type[SalebotError]
) -> SalebotError:
    with pytest.raises(error_type) as caught:
        await CALLS[call_name][1](salebot)
    _assert_key_hidden(caught.value)
    return caught.value


@call_names
@pytest.mark.parametrize("status", [500, 502, 503, 429])
async def test_http_5xx_and_429_are_unavailable(
    standin: SalebotStandIn, salebot: SalebotClient, call_name: str, status: int
) -> None:
    action = CALLS[call_name][0]
    standin.fail_next(action, status=status)

    error = await _fails_with(salebot, call_name, SalebotUnavailable)

    assert str(status) in str(error)
    assert standin.requests_of(action)[-1].status == status


@call_names
@pytest.mark.parametrize(
    ("trouble", "error_type"),
    [
        pytest.param(lambda standin, _: standin.set_down(), SalebotUnavailable, id="down"),
        pytest.param(
            lambda standin, action: standin.delay_next(action, TIMEOUT * 5),
            SalebotUnavailable,
            id="timeout",
        ),
        pytest.param(lambda standin, _: standin.reject_key(), SalebotRejected, id="revoked_key"),
    ],
)
async def test_salebot_in_trouble_fails_each_call_with_its_error(
    standin: SalebotStandIn,
    salebot: SalebotClient,
    call_name: str,
    trouble: Callable[[SalebotStandIn, str], None],
    error_type: type[SalebotError],
) -> None:
    trouble(standin, CALLS[call_name][0])

    await _fails_with(salebot, call_name, error_type)


@call_names
async def test_connection_refused_is_unavailable(call_name: str) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=TIMEOUT) as http:
        await _fails_with(SalebotClient(http, API_KEY, BOT), call_name, SalebotUnavailable)


@pytest.mark.parametrize("call_name", [name for name in CALLS if name != "save"])
async def test_non_json_200_is_a_bad_response(
    standin: SalebotStandIn, salebot: SalebotClient, call_name: str
) -> None:
    # (A save_variables answered 2xx has landed whatever its body: tested above.)
    standin.faults.add(CALLS[call_name][0], Fault(status=200, body="<html>OK</html>"))

    await _fails_with(salebot, call_name, SalebotBadResponse)


@call_names
async def test_wrong_key_is_rejected(http: httpx.AsyncClient, call_name: str) -> None:
    wrong = SalebotClient(http, "wrong-" + API_KEY, BOT)

    error = await _fails_with(wrong, call_name, SalebotRejected)

    assert "wrong-" not in str(error)


async def test_invalid_variable_name_is_rejected_and_nothing_written(
    standin: SalebotStandIn, salebot: SalebotClient
) -> None:
    before = standin.client_variables(TG_CLIENT_ID)

    with pytest.raises(SalebotRejected) as caught:
        await salebot.save_variables(TG_CLIENT_ID, {"client.1bad": "x", "client.ok": "y"})

    assert standin.requests_of("save_variables")[-1].status == 400
    _assert_key_hidden(caught.value)
    assert standin.client_variables(TG_CLIENT_ID) == before


# -- connected_channels ------------------------------------------------------------------------


async def test_connected_channels_lists_the_funnel_bot(
    standin: SalebotStandIn, salebot: SalebotClient
) -> None:
    channels = await salebot.connected_channels()

    group_ids = {channel.group_id for channel in channels}
    assert BOT in group_ids
    assert VK_GROUP in group_ids  # every platform is flattened into the list
    assert standin.requests_of("connected_channels")[0].method == "GET"

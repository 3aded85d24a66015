"""The Salebot stand-in, exercised over real HTTP on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from sandbox.salebot import SalebotClientRecord, SalebotStandIn

API_KEY = "sb-test-key-0123456789"
BOT = "school_funnel_bot"
IVAN_TG_ID = "100000001"  # also the platform id of the seed's VK client
IVAN_ID = 836058541
VK_IVAN_ID = 512000001


@pytest.fixture
async def sb() -> AsyncIterator[SalebotStandIn]:
    async with SalebotStandIn.from_seed(api_key=API_KEY) as stand_in:
        yield stand_in


@pytest.fixture
async def http(sb: SalebotStandIn) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"{sb.base_url}/api/{API_KEY}", timeout=5) as client:
        yield client


async def test_find_by_platform_id_filters_on_group(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/find_client_id_by_platform_id", json={"platform_ids": [IVAN_TG_ID], "group_id": BOT}
    )

    assert response.status_code == 200
    assert response.json() == [
        {
            "id": IVAN_ID,
            "tag": None,
            "created_at": 1718000000,
            "name": "Иван Петров",
            "avatar": "https://example.invalid/avatars/100000001.jpg",
            "platform_id": IVAN_TG_ID,
            "group": BOT,
            "variables": {"tg_username": "@ivan_petrov"},
        }
    ]


async def test_find_without_group_returns_the_vk_look_alike(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/find_client_id_by_platform_id", json={"platform_ids": [int(IVAN_TG_ID)]}
    )

    found = {(item["id"], item["group"], item["platform_id"]) for item in response.json()}
    assert found == {(IVAN_ID, BOT, IVAN_TG_ID), (VK_IVAN_ID, "123456", IVAN_TG_ID)}


async def test_find_unknown_platform_id_is_an_empty_array(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/find_client_id_by_platform_id", json={"platform_ids": ["999"], "group_id": BOT}
    )

    assert response.status_code == 200
    assert response.json() == []


async def test_client_prefix_goes_to_client_variables_and_reads_back_bare(
    sb: SalebotStandIn, http: httpx.AsyncClient
) -> None:
    client = sb.add_client(7_000_000_001, name="Пётр")
    written = {
        "client.email": "petr@example.com",
        "client.gc_user_id": 123456789,
        "client.telegram_id": "7000000001",
        "stage": "linked",
    }

    saved = await http.post(
        "/save_variables", json={"client_id": str(client.id), "variables": written}
    )
    read = await http.get("/get_variables", params={"client_id": client.id})

    assert saved.status_code == 200
    assert saved.json() == {"status": "success"}
    assert sb.client_variables(client.id) == {
        "email": "petr@example.com",
        "gc_user_id": "123456789",
        "telegram_id": "7000000001",
    }
    assert sb.deal_variables(client.id) == {"stage": "linked"}
    assert read.json() == {
        "platform_id": "7000000001",
        "client_id": str(client.id),
        "name": "Пётр",
        "avatar": "NONE",
        "main_client_id": "NONE",
        "message_id": "NONE",
        "email": "petr@example.com",
        "gc_user_id": "123456789",
        "telegram_id": "7000000001",
        "stage": "linked",
    }


async def test_deal_variable_wins_over_client_variable_and_dies_with_the_deal(
    sb: SalebotStandIn, http: httpx.AsyncClient
) -> None:
    await http.post(
        "/save_variables",
        json={"client_id": IVAN_ID, "variables": {"client.email": "c@x.io", "email": "d@x.io"}},
    )

    assert (await http.get("/get_variables", params={"client_id": IVAN_ID})).json()[
        "email"
    ] == "d@x.io"
    sb.close_deal(IVAN_ID)
    assert (await http.get("/get_variables", params={"client_id": IVAN_ID})).json()[
        "email"
    ] == "c@x.io"


async def test_nested_variables_shape(sb: SalebotStandIn, http: httpx.AsyncClient) -> None:
    sb.variables_shape = "nested"

    body = (await http.post("/get_variables", json={"client_id": IVAN_ID})).json()

    assert body["variables"] == {"tg_username": "@ivan_petrov"}
    assert body["client_id"] == str(IVAN_ID)
    assert "tg_username" not in body


async def test_saving_the_same_variables_twice_gives_the_same_state(
    sb: SalebotStandIn, http: httpx.AsyncClient
) -> None:
    payload = {"client_id": IVAN_ID, "variables": {"client.email": "ivan@example.com"}}

    await http.post("/save_variables", json=payload)
    once = sb.client_variables(IVAN_ID)
    await http.post("/save_variables", json=payload)

    assert (
        sb.client_variables(IVAN_ID)
        == once
        == {
            "tg_username": "@ivan_petrov",
            "email": "ivan@example.com",
        }
    )


async def test_unknown_client_is_http_200_client_not_found(http: httpx.AsyncClient) -> None:
    calls = [
        http.post("/save_variables", json={"client_id": 1, "variables": {"client.a": "1"}}),
        http.get("/get_variables", params={"client_id": "1"}),
        http.post("/callback", json={"client_id": 1, "message": "gc_linked"}),
    ]
    for call in calls:
        response = await call
        assert response.status_code == 200
        assert response.json() == {"status": "client_not_found"}


async def test_answer_client_not_found_for_a_known_client(
    sb: SalebotStandIn, http: httpx.AsyncClient
) -> None:
    sb.answer_client_not_found("save_variables")
    payload = {"client_id": IVAN_ID, "variables": {"client.email": "ivan@example.com"}}

    first = await http.post("/save_variables", json=payload)
    second = await http.post("/save_variables", json=payload)

    assert first.json() == {"status": "client_not_found"}
    assert second.json() == {"status": "success"}
    assert sb.client_variables(IVAN_ID)["email"] == "ivan@example.com"


@pytest.mark.parametrize(
    "variables",
    [
        {"client.1email": "x"},
        {"client.e-mail": "x"},
        {"_email": "x"},
        {"client.": "x"},
        {"a" * 501: "x"},
        {"client.email": "x" * 100_001},
    ],
)
async def test_invalid_variables_are_refused_and_nothing_is_written(
    sb: SalebotStandIn, http: httpx.AsyncClient, variables: dict[str, str]
) -> None:
    before = (sb.client_variables(IVAN_ID), sb.deal_variables(IVAN_ID))

    response = await http.post(
        "/save_variables",
        json={"client_id": IVAN_ID, "variables": {"client.ok": "1", **variables}},
    )

    assert response.status_code == 400
    assert response.json()["status"] == "error"
    assert response.json()["message"]
    assert (sb.client_variables(IVAN_ID), sb.deal_variables(IVAN_ID)) == before


async def test_fail_next_answers_raw_500_once(sb: SalebotStandIn, http: httpx.AsyncClient) -> None:
    sb.fail_next("save_variables")
    payload = {"client_id": IVAN_ID, "variables": {"client.email": "ivan@example.com"}}

    failed = await http.post("/save_variables", json=payload)
    other_action = await http.get("/get_variables", params={"client_id": IVAN_ID})
    retried = await http.post("/save_variables", json=payload)

    assert failed.status_code == 500
    assert failed.headers["content-type"].startswith("text/html")
    assert other_action.status_code == 200
    assert retried.json() == {"status": "success"}
    assert [r.status for r in sb.requests_of("save_variables")] == [500, 200]


async def test_star_fault_hits_every_action(sb: SalebotStandIn, http: httpx.AsyncClient) -> None:
    sb.fail_next("*", status=502, times=2)

    statuses = [
        (await http.get("/connected_channels")).status_code,
        (await http.get("/get_variables", params={"client_id": IVAN_ID})).status_code,
        (await http.get("/connected_channels")).status_code,
    ]

    assert statuses == [502, 502, 200]


async def test_set_down_answers_503_html_everywhere(
    sb: SalebotStandIn, http: httpx.AsyncClient
) -> None:
    sb.set_down(True)
    down = await http.get("/connected_channels")
    down_wrong_key = await http.get(f"{sb.base_url}/api/wrong/connected_channels")
    sb.set_down(False)
    up = await http.get("/connected_channels")

    assert down.status_code == down_wrong_key.status_code == 503
    assert down.headers["content-type"].startswith("text/html")
    assert up.status_code == 200


async def test_wrong_or_revoked_key_is_401(sb: SalebotStandIn, http: httpx.AsyncClient) -> None:
    wrong = await http.get(f"{sb.base_url}/api/not-the-key/connected_channels")
    sb.reject_key()
    revoked = await http.get("/connected_channels")

    for response in (wrong, revoked):
        assert response.status_code == 401
        assert response.json() == {"status": "error", "message": "Unauthorized"}


async def test_unknown_action_is_404_json(http: httpx.AsyncClient) -> None:
    response = await http.post("/get_client", json={"client_id": IVAN_ID})

    assert response.status_code == 404
    assert response.json() == {"status": "error", "message": "Unknown action"}


async def test_connected_channels_lists_the_bot(http: httpx.AsyncClient) -> None:
    body = (await http.get("/connected_channels")).json()

    assert body["status"] == "success"
    assert [(c["short_name"], c["group_id"]) for c in body["telegram"]] == [(BOT, BOT)]
    assert all(isinstance(c["id"], int) for c in body["telegram"])
    assert [c["group_id"] for c in body["vk"]] == ["123456"]


async def test_recorded_requests_hide_the_key(sb: SalebotStandIn, http: httpx.AsyncClient) -> None:
    await http.post(
        "/find_client_id_by_platform_id", json={"platform_ids": [IVAN_TG_ID], "group_id": BOT}
    )
    await http.get("/get_variables", params={"client_id": IVAN_ID})
    await http.get(f"{sb.base_url}/api/{API_KEY}-typo/connected_channels")

    assert [(r.action, r.method, r.status) for r in sb.requests] == [
        ("find_client_id_by_platform_id", "POST", 200),
        ("get_variables", "GET", 200),
        ("connected_channels", "GET", 401),
    ]
    assert sb.requests[0].path == "/api/***/find_client_id_by_platform_id"
    assert sb.requests[0].body == {"platform_ids": [IVAN_TG_ID], "group_id": BOT}
    assert sb.requests[1].query == {"client_id": str(IVAN_ID)}
    assert API_KEY not in repr(sb.requests)


async def test_json_without_content_type_and_form_bodies_are_accepted(
    sb: SalebotStandIn, http: httpx.AsyncClient
) -> None:
    as_text = await http.post(
        "/save_variables",
        content=json.dumps({"client_id": IVAN_ID, "variables": {"client.a": "1"}}),
        headers={"Content-Type": "text/plain"},
    )
    as_form = await http.post(
        "/save_variables", data={"client_id": str(IVAN_ID), "variables[client.b]": "2"}
    )
    find_form = await http.post(
        "/find_client_id_by_platform_id", data={"platform_ids[]": IVAN_TG_ID, "group_id": BOT}
    )

    assert as_text.json() == as_form.json() == {"status": "success"}
    assert sb.client_variables(IVAN_ID) == {"tg_username": "@ivan_petrov", "a": "1", "b": "2"}
    assert [item["id"] for item in find_form.json()] == [IVAN_ID]


async def test_broken_json_is_a_400_error(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/save_variables", content=b"{not json", headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert response.json()["status"] == "error"


async def test_callback_records_and_saves_extra_fields_as_deal_variables(
    sb: SalebotStandIn, http: httpx.AsyncClient
) -> None:
    response = await http.post(
        "/callback", json={"client_id": IVAN_ID, "message": "gc_linked", "gc_user_id": 42}
    )

    assert response.json() == {"status": "success"}
    assert sb.callbacks == [
        {"client_id": IVAN_ID, "message": "gc_linked", "variables": {"gc_user_id": "42"}}
    ]
    assert sb.deal_variables(IVAN_ID) == {"gc_user_id": "42"}
    assert "gc_user_id" not in sb.client_variables(IVAN_ID)


async def test_load_clients_gets_or_creates(sb: SalebotStandIn, http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/load_clients",
        json=[
            {"platform_id": int(IVAN_TG_ID), "group_id": BOT, "client_type": 1},
            {"platform_id": 7_000_000_002, "group_id": BOT, "client_type": 1},
        ],
    )

    body = response.json()
    assert body["status"] == "success"
    existing, created = body["items"]
    assert existing == {
        "platform_id": int(IVAN_TG_ID),
        "group_id": BOT,
        "client_type": 1,
        "status": "success",
        "id": IVAN_ID,
    }
    new_client = sb.client_by_platform_id("7000000002")
    assert new_client is not None
    assert created["id"] == new_client.id
    assert (new_client.group, new_client.client_type) == (BOT, 1)


async def test_delayed_answer_is_seen_at_once_and_does_not_hold_up_stop() -> None:
    stand_in = SalebotStandIn(
        api_key=API_KEY,
        clients=[SalebotClientRecord(id=1, platform_id="5", group=BOT, name="Slow")],
    )
    async with stand_in:
        stand_in.delay_next("get_variables", 30)
        async with httpx.AsyncClient(timeout=0.2) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.get(stand_in.api_url("get_variables"), params={"client_id": 1})

        [pending] = stand_in.requests_of("get_variables")
        assert pending.status is None
    # Leaving the block must not wait out the 30 s delay (the test timeout would catch it).


async def test_add_client_and_lookups(sb: SalebotStandIn) -> None:
    added = sb.add_client("200000001", name="New")
    vk = sb.add_client(200000001, group="123456", client_type=0)

    assert added.id != vk.id
    assert added.id not in {c.id for c in sb.clients if c is not added}
    assert sb.client_by_platform_id(200000001) is added
    assert sb.client_by_platform_id("200000001", group="123456") is vk
    assert sb.client_by_platform_id("200000001", group="other") is None
    assert sb.client_variables(added.id) == {}


async def test_malformed_path_is_404_and_recorded_without_the_key(sb: SalebotStandIn) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"{sb.base_url}//api/{API_KEY}/connected_channels")

    assert response.status_code == 404
    [recorded] = sb.requests
    assert (recorded.action, recorded.status) == ("", 404)
    assert API_KEY not in recorded.path

"""Conflicts (one person, two Telegram accounts) and the lookup limits, through the real
Dispatcher; replies go to the Telegram stand-in over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.linking.flow import ConflictPolicy
from services.linking.lookup_gate import LookupLimits
from services.models import GetCourseUser
from services.notifications import OperatorEvent
from services.storage.links import LinkRepository
from services.storage.outbox import OutboxRepository
from tests.conftest import StandIns
from tests.routing import Routed, routed_for

FIRST = 100000001
SECOND = 100000002


async def _routed(standins: StandIns, **options: object) -> AsyncIterator[Routed]:
    async for routed in routed_for(standins, **options):  # type: ignore[arg-type]
        routed.directory.users["ivan.alias@example.com"] = GetCourseUser(
            id="42", email="ivan.alias@example.com"
        )
        yield routed


@pytest.fixture
async def refusing(standins: StandIns) -> AsyncIterator[Routed]:
    async for routed in _routed(standins):
        yield routed


@pytest.fixture
async def replacing(standins: StandIns) -> AsyncIterator[Routed]:
    async for routed in _routed(standins, policy=ConflictPolicy.REPLACE):
        yield routed


@pytest.mark.parametrize("email", ["ivan@example.com", "ivan.alias@example.com"])
async def test_second_account_is_refused_and_operators_told(refusing: Routed, email: str) -> None:
    await refusing.feed("ivan@example.com", user=FIRST)
    await refusing.feed(email, user=SECOND)  # same email, or another email of the same user

    assert "уже привязан к другому аккаунту" in refusing.replies(SECOND)[-1]
    links = LinkRepository(refusing.database)
    assert await links.get(SECOND) is None
    first = await links.get(FIRST)
    assert first is not None
    assert first.email == "ivan@example.com"  # never silently overwritten
    assert await OutboxRepository(refusing.database).pending_for(SECOND) is None
    [notice] = refusing.notifier.notices
    assert notice.event is OperatorEvent.CONFLICT
    assert notice.details["holder_telegram_id"] == str(FIRST)
    assert notice.details["telegram_id"] == str(SECOND)
    assert "ivan@" not in str(notice.details)  # emails reach operators masked
    rows = await refusing.database.fetchall("SELECT resolution FROM link_conflicts")
    assert [row["resolution"] for row in rows] == ["refused"]


async def test_replace_policy_moves_the_link_and_clears_the_old_client(
    replacing: Routed,
) -> None:
    await replacing.feed("ivan@example.com", user=FIRST)
    await replacing.feed("ivan@example.com", user=SECOND)

    assert "Готово" in replacing.replies(SECOND)[-1]
    links = LinkRepository(replacing.database)
    assert await links.get(FIRST) is None
    second = await links.get(SECOND)
    assert second is not None
    assert second.gc_user_id == "42"
    outbox = OutboxRepository(replacing.database)
    first_write = await outbox.pending_for(FIRST)
    assert first_write is not None
    assert first_write.variables == {"client.email": "", "client.gc_user_id": ""}
    [notice] = replacing.notifier.notices
    assert notice.event is OperatorEvent.CONFLICT


async def test_relinking_oneself_is_no_conflict(refusing: Routed) -> None:
    await refusing.feed("ivan@example.com", user=FIRST)
    await refusing.feed("/email", user=FIRST)
    await refusing.feed("ivan.alias@example.com", user=FIRST)
    assert "Готово" in refusing.replies(FIRST)[-1]
    assert refusing.notifier.notices == []


async def test_attempts_per_person_are_limited_and_survive_start_and_restart(
    standins: StandIns,
) -> None:
    limits = LookupLimits(per_person_per_hour=3, everyone_per_hour=100)
    async for routed in routed_for(standins, limits=limits):
        for n in range(3):
            await routed.feed(f"nobody{n}@example.com", user=FIRST)
        await routed.feed("/start", user=FIRST)
        await routed.feed("ivan@example.com", user=FIRST)
        assert "Слишком много попыток" in routed.replies(FIRST)[-1]
        assert "60 мин" in routed.replies(FIRST)[-1]
        assert len(routed.directory.asked) == 3
        await routed.feed("ivan@example.com", user=SECOND)  # others are not affected
        assert "Готово" in routed.replies(SECOND)[-1]
    async for routed in routed_for(standins, limits=limits):  # same database, new process
        await routed.feed("ivan@example.com", user=FIRST)
        assert "Слишком много попыток" in routed.replies(FIRST)[-1]
        assert routed.directory.asked == []


async def test_lookups_past_the_hourly_direct_share_wait_for_an_export(
    standins: StandIns,
) -> None:
    # GETCOURSE_LOOKUPS_PER_HOUR bounds what goes straight to GetCourse; it never turns a
    # student away (a launch day has thousands of lookups an hour).
    limits = LookupLimits(per_person_per_hour=5, everyone_per_hour=2)
    # No queue worker here: the person hears they are in the queue, and the lookup stays there.
    async for routed in routed_for(standins, limits=limits, getcourse_queued_notice_seconds=0.05):
        await routed.feed("nobody@example.com", user=FIRST)
        await routed.feed("nobody@example.com", user=SECOND)
        await routed.feed("ivan@example.com", user=100000003)
        assert len(routed.directory.asked) == 2
        queued = await routed.database.fetchall("SELECT telegram_id, email FROM queued_lookups")
        assert [(row["telegram_id"], row["email"]) for row in queued] == [
            (100000003, "ivan@example.com")
        ]
        assert "вы в очереди" in routed.replies(100000003)[-1]


async def test_invalid_input_costs_no_attempt(standins: StandIns) -> None:
    limits = LookupLimits(per_person_per_hour=1, everyone_per_hour=100)
    async for routed in routed_for(standins, limits=limits):
        for _ in range(5):
            await routed.feed("not an email", user=FIRST)
        await routed.feed("ivan@example.com", user=FIRST)
        assert "Готово" in routed.replies(FIRST)[-1]

"""The last-call tracker that readiness, metrics and the operators' health view read."""

from __future__ import annotations

import pytest

from services.errors import (
    GetCourseBudgetExhausted,
    GetCourseBusy,
    GetCourseRateLimited,
    SalebotClientNotFound,
    SalebotUnavailable,
)
from services.health import GETCOURSE, SALEBOT, CallOutcome, CallTracker, cause_of


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        self.now += 1
        return self.now


@pytest.fixture
def tracker() -> CallTracker:
    return CallTracker(clock=Clock())


def test_a_failure_is_unhealthy_until_the_next_success(tracker: CallTracker) -> None:
    assert tracker.status(SALEBOT).healthy  # nothing known yet
    with pytest.raises(SalebotUnavailable), tracker.track(SALEBOT, "save_variables"):
        raise SalebotUnavailable("save_variables: HTTP 503")
    status = tracker.status(SALEBOT)
    assert not status.healthy
    assert (status.last_failure_at, status.last_failure_cause) == (101.0, "unavailable")
    assert tracker.status(GETCOURSE).healthy  # per service

    with tracker.track(SALEBOT, "save_variables"):
        pass
    status = tracker.status(SALEBOT)
    assert status.healthy
    assert (status.last_success_at, status.last_failure_cause) == (102.0, "unavailable")


@pytest.mark.parametrize(
    "error",
    [SalebotClientNotFound("no client"), GetCourseBusy("905")],
    ids=["client-not-found", "busy-905"],
)
def test_answers_that_are_not_the_service_failing_keep_it_healthy(
    tracker: CallTracker, error: Exception
) -> None:
    outcomes: list[CallOutcome] = []
    tracker.subscribe(outcomes.append)
    with pytest.raises(type(error)), tracker.track(SALEBOT, "op"):
        raise error
    assert tracker.status(SALEBOT).healthy
    assert [(o.cause, o.healthy) for o in outcomes] == [(cause_of(error), True)]


def test_our_own_budget_refusal_is_no_call(tracker: CallTracker) -> None:
    outcomes: list[CallOutcome] = []
    tracker.subscribe(outcomes.append)
    with pytest.raises(GetCourseBudgetExhausted), tracker.track(GETCOURSE, "find_user"):
        raise GetCourseBudgetExhausted("spent", retry_after=60)
    assert outcomes == []
    assert tracker.status(GETCOURSE).last_failure_at is None


def test_listeners_hear_every_outcome(tracker: CallTracker) -> None:
    outcomes: list[CallOutcome] = []
    tracker.subscribe(outcomes.append)
    with tracker.track(GETCOURSE, "groups"):
        pass
    with pytest.raises(GetCourseRateLimited), tracker.track(GETCOURSE, "find_user"):
        raise GetCourseRateLimited("903")
    with pytest.raises(KeyError), tracker.track(GETCOURSE, "find_user"):
        raise KeyError("a bug")
    assert [(o.operation, o.cause, o.healthy) for o in outcomes] == [
        ("groups", None, True),
        ("find_user", "rate_limited", False),
        ("find_user", "unexpected", False),
    ]
    assert all(o.service == GETCOURSE and o.seconds >= 0 for o in outcomes)

"""How the external services answered lately: the last success and failure of each, and every
call's outcome for whoever listens (metrics, an operator's health view).

The GetCourse and Salebot clients report through ``CallTracker.track``; readiness and the
operator commands read ``CallTracker.status``. No web or Telegram code here."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from services.errors import (
    GetCourseBudgetExhausted,
    GetCourseBusy,
    SalebotClientNotFound,
    ServiceError,
)

GETCOURSE = "getcourse"
SALEBOT = "salebot"

# Answers that are failures of the request but say nothing bad about the service: Salebot
# knows no client for this person yet; another export of the school is running.
_ANSWERED_NORMALLY: tuple[type[ServiceError], ...] = (SalebotClientNotFound, GetCourseBusy)
# Refusals of our own, taken before anything was sent.
_NOT_SENT: tuple[type[ServiceError], ...] = (GetCourseBudgetExhausted,)
_SERVICE_PREFIX = re.compile(r"^(GetCourse|Salebot)")


@dataclass(frozen=True)
class CallOutcome:
    """One finished call: ``cause`` is ``None`` for success, else a short snake_case name."""

    service: str
    operation: str
    cause: str | None
    healthy: bool
    seconds: float


@dataclass(frozen=True)
class ServiceStatus:
    """The latest of each kind; times are Unix seconds, ``None`` when it never happened."""

    last_success_at: float | None = None
    last_failure_at: float | None = None
    last_failure_cause: str | None = None

    @property
    def healthy(self) -> bool:
        """No failure yet, or a success since the last one."""
        if self.last_failure_at is None:
            return True
        return self.last_success_at is not None and self.last_success_at >= self.last_failure_at


def cause_of(error: BaseException) -> str:
    """``GetCourseRateLimited`` -> ``rate_limited``; anything untyped is ``unexpected``."""
    if not isinstance(error, ServiceError):
        return "unexpected"
    name = _SERVICE_PREFIX.sub("", type(error).__name__)
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class CallTracker:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._status: dict[str, ServiceStatus] = {}
        self._listeners: list[Callable[[CallOutcome], None]] = []

    def subscribe(self, listener: Callable[[CallOutcome], None]) -> None:
        """``listener`` hears every outcome; it must be quick and must not raise."""
        self._listeners.append(listener)

    def status(self, service: str) -> ServiceStatus:
        return self._status.get(service, ServiceStatus())

    @contextlib.contextmanager
    def track(self, service: str, operation: str) -> Iterator[None]:
        """Record the block as one call: success, or the failure it raised (re-raised)."""
        started = time.perf_counter()
        try:
            yield
        except _NOT_SENT:
            raise
        except Exception as error:
            healthy = isinstance(error, _ANSWERED_NORMALLY)
            self._record(service, operation, cause_of(error), healthy, started)
            raise
        self._record(service, operation, None, True, started)

    def _record(
        self, service: str, operation: str, cause: str | None, healthy: bool, started: float
    ) -> None:
        now = self._clock()
        status = self.status(service)
        if healthy:
            status = replace(status, last_success_at=now)
        else:
            status = replace(status, last_failure_at=now, last_failure_cause=cause)
        self._status[service] = status
        outcome = CallOutcome(service, operation, cause, healthy, time.perf_counter() - started)
        for listener in self._listeners:
            listener(outcome)

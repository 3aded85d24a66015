"""What the operators must hear about, as plain data; how it reaches them is wired in ``bot/``.

Services report a ``OperatorNotice`` to a ``Notifier`` and carry on: notifying never blocks or
fails the work that caused it. Details hold IDs and masked emails only, never keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class OperatorEvent(StrEnum):
    CONFLICT = "conflict"  # an email or GetCourse user claimed by a second Telegram account
    DELIVERY_FAILED = "delivery_failed"  # a Salebot write failed permanently
    GETCOURSE_BUDGET_EXHAUSTED = "getcourse_budget_exhausted"  # GetCourse answered 903
    GETCOURSE_MISCONFIGURED = "getcourse_misconfigured"  # bad key, redirect, plan without API
    SALEBOT_KEY_REJECTED = "salebot_key_rejected"  # Salebot refused the key or its scope


@dataclass(frozen=True)
class OperatorNotice:
    event: OperatorEvent
    details: dict[str, str] = field(default_factory=dict)


class Notifier(Protocol):
    def notify(self, notice: OperatorNotice) -> None:
        """Queue a notice; returns at once and never raises."""
        ...


class NullNotifier:
    """For setups without an operator chat, and for tests that do not look at notices."""

    def notify(self, notice: OperatorNotice) -> None:
        return None

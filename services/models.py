"""Domain records shared by the services (no I/O here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# GetCourse statuses that keep someone out of the school; a full sync asks about them in this order.
BLOCKED_STATUSES = ("banned", "deactivated")


@dataclass(frozen=True)
class GetCourseUser:
    """A GetCourse user as the directory found them; every value is a string, as exports give.

    ``custom_fields`` holds every other non-empty column by its title: the account's own fields
    and the standard ones (Создан, Город, utm_*) alike, since an export does not tell them apart."""

    id: str
    email: str
    first_name: str = ""
    last_name: str = ""
    phone: str = ""
    status: str | None = None
    custom_fields: dict[str, str] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)

    @property
    def is_blocked(self) -> bool:
        return self.status in BLOCKED_STATUSES


@dataclass(frozen=True)
class Link:
    """One Telegram account linked to one GetCourse user (and, once delivered, a Salebot client)."""

    telegram_id: int
    email: str
    gc_user_id: str
    gc_name: str
    salebot_client_id: int | None
    linked_at: datetime
    updated_at: datetime
    linked_by: int | None = None  # the operator who made the link; None: the person themselves


@dataclass(frozen=True)
class OutboxItem:
    """A pending write of client variables to the Salebot client of one Telegram user."""

    id: int
    telegram_id: int
    variables: dict[str, str]
    attempts: int
    next_attempt_at: float
    last_error: str | None
    cause: str | None
    created_at: datetime


def salebot_variables(link: Link) -> dict[str, str]:
    """The client variables this product owns; Salebot values are strings, IDs never floats."""
    return {
        "client.email": link.email,
        "client.gc_user_id": link.gc_user_id,
        "client.telegram_id": str(link.telegram_id),
    }


def cleared_salebot_variables() -> dict[str, str]:
    """What a Salebot client keeps once its link went to another Telegram account: our email
    and GetCourse ID are no longer true of it (its Telegram ID still is)."""
    return {"client.email": "", "client.gc_user_id": ""}

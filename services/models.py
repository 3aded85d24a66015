"""Domain records shared by the services (no I/O here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

# GetCourse statuses that keep someone out of the school; a full sync asks about them in this order.
BLOCKED_STATUSES = ("banned", "deactivated")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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

    @property
    def version(self) -> int:
        """Changes whenever the link does (microseconds of ``updated_at``): a confirmation
        button carries it, so a press confirms only the link it was shown for."""
        stamp = self.updated_at if self.updated_at.tzinfo else self.updated_at.replace(tzinfo=UTC)
        return (stamp - EPOCH) // timedelta(microseconds=1)


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


# The client variables this product owns.
SALEBOT_VARIABLES = ("client.email", "client.gc_user_id", "client.telegram_id")


def salebot_variables(link: Link) -> dict[str, str]:
    """Our variables for a link; Salebot values are strings, IDs never floats."""
    values = (link.email, link.gc_user_id, str(link.telegram_id))
    return dict(zip(SALEBOT_VARIABLES, values, strict=True))


def blank_salebot_variables() -> dict[str, str]:
    """Every variable of ours emptied: what unlinking and erasing write to the client."""
    return dict.fromkeys(SALEBOT_VARIABLES, "")


def cleared_salebot_variables() -> dict[str, str]:
    """What a Salebot client keeps once its link went to another Telegram account: our email
    and GetCourse ID are no longer true of it (its Telegram ID still is)."""
    return {"client.email": "", "client.gc_user_id": ""}

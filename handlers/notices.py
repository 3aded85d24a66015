"""Operator notices as one Telegram message per batch (see ``services.notifications``)."""

from __future__ import annotations

from handlers.texts import Texts
from services.notifications import NoticeGroup

# A batch must fit one message whatever the services put in the details: each example's details
# get at most DETAILS_LIMIT characters, fewer when a batch of many events would not fit.
MESSAGE_LIMIT = 4096
DETAILS_LIMIT = 160
MIN_DETAILS_LIMIT = 24


def render_notices(texts: Texts, batch: list[NoticeGroup]) -> str:
    limit = DETAILS_LIMIT
    message = _render(texts, batch, limit)
    while len(message) > MESSAGE_LIMIT and limit > MIN_DETAILS_LIMIT:
        limit = max(limit * 3 // 4, MIN_DETAILS_LIMIT)
        message = _render(texts, batch, limit)
    return message


def _render(texts: Texts, batch: list[NoticeGroup], limit: int) -> str:
    lines = [texts.render("notice_title")]
    for group in batch:
        lines.append(texts.render(f"notice_{group.event}", count=group.count))
        for details, times in group.examples:
            key = "notice_example" if times == 1 else "notice_example_repeated"
            lines.append(texts.render(key, details=_details(details, limit), count=times))
        if group.unlisted:
            lines.append(texts.render("notice_more", count=group.unlisted))
    return "\n".join(lines)


def _details(details: dict[str, str], limit: int) -> str:
    text = ", ".join(f"{name}={value}" for name, value in details.items()) or "—"
    return text if len(text) <= limit else text[: limit - 1] + "…"

"""Operator notices as one Telegram message per batch (see ``services.notifications``)."""

from __future__ import annotations

from handlers.texts import Texts
from services.notifications import NoticeGroup

# A batch must fit one message (4,096 characters) whatever the services put in the details.
DETAILS_LIMIT = 160


def render_notices(texts: Texts, batch: list[NoticeGroup]) -> str:
    lines = [texts.render("notice_title")]
    for group in batch:
        lines.append(texts.render(f"notice_{group.event}", count=group.count))
        for details, times in group.examples:
            key = "notice_example" if times == 1 else "notice_example_repeated"
            lines.append(texts.render(key, details=_details(details), count=times))
        if group.unlisted:
            lines.append(texts.render("notice_more", count=group.unlisted))
    return "\n".join(lines)


def _details(details: dict[str, str]) -> str:
    text = ", ".join(f"{name}={value}" for name, value in details.items()) or "—"
    return text if len(text) <= DETAILS_LIMIT else text[: DETAILS_LIMIT - 1] + "…"

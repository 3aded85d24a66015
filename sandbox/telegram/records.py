"""What the Telegram stand-in records and hands to tests: the bot's messages as they stand, its
API calls, the files it sent, its answers to button presses and the webhook deliveries."""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field
from typing import Any

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def unix_now() -> int:
    """Telegram's dates: whole seconds since the epoch."""
    return int(time.time())


@dataclass(frozen=True)
class SentMessage:
    """A message the bot sent, as it currently stands: an edit replaces the stored copy."""

    message_id: int
    chat_id: int
    text: str | None
    reply_markup: dict[str, Any] | None
    parse_mode: str | None
    date: int
    edits: int = 0
    edit_date: int | None = None
    document: dict[str, Any] | None = None
    photo: list[dict[str, Any]] | None = None
    caption: str | None = None
    deleted: bool = False
    params: dict[str, Any] = field(default_factory=dict)  # everything the sending call carried

    def buttons(self) -> list[tuple[str, str]]:
        """(text, callback_data) of the inline buttons, row by row; "" for url/web-app buttons."""
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        return [
            (str(b.get("text", "")), str(b.get("callback_data", ""))) for row in rows for b in row
        ]


@dataclass(frozen=True)
class ApiCall:
    """One bot->API request: canonical method name, decoded params and the HTTP status answered."""

    method: str
    params: dict[str, Any]
    status: int


@dataclass(frozen=True)
class UploadedFile:
    file_id: str
    file_unique_id: str
    file_name: str
    mime_type: str
    content: bytes

    def as_photo_size(self) -> dict[str, Any]:
        """Telegram keeps several sizes of a photo; the stand-in keeps the one it was sent,
        with its dimensions read from a PNG header (0 for other formats)."""
        width, height = 0, 0
        if self.content.startswith(_PNG_SIGNATURE) and len(self.content) >= 24:
            width, height = struct.unpack(">II", self.content[16:24])
        return {**self._file_fields(), "width": width, "height": height}

    def as_document(self) -> dict[str, Any]:
        return {**self._file_fields(), "file_name": self.file_name, "mime_type": self.mime_type}

    def _file_fields(self) -> dict[str, Any]:
        """The fields every kind of Telegram file has."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.content),
        }


@dataclass(frozen=True)
class CallbackAnswer:
    callback_query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int | None


@dataclass(frozen=True)
class WebhookDelivery:
    """One POST of an update to the bot's webhook: the HTTP status, or why there was none."""

    update_id: int
    status: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

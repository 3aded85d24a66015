"""Error texts from GetCourse and Salebot made fit to store and show.

Such a text may quote what the service answered: an email, a key in a URL, a token, control
characters that break a log line or a Telegram message. ``error_text`` is the one way an
external failure becomes text for the database, an operator's screen or a notice."""

from __future__ import annotations

import re

from services.email import mask_email

MAX_ERROR_LENGTH = 300
# C0/C1 controls (newlines and tabs too: an error is one line), zero-width and bidi marks.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
_SECRET_PARAMETER = re.compile(
    r"(?i)\b(key|api_key|apikey|token|access_token|secret|password|passwd|code)=[^&\s\"']+"
)
# API keys and tokens: long unbroken runs of letters, digits, "_" and "-".
_LONG_TOKEN = re.compile(r"[A-Za-z0-9_\-]{32,}")
REDACTED = "***"


def error_text(error: BaseException | str) -> str:
    """One line of at most ``MAX_ERROR_LENGTH`` characters: no control characters, emails
    masked, secret-looking values replaced by ``***``."""
    text = _CONTROL.sub(" ", str(error))
    text = _SECRET_PARAMETER.sub(lambda match: f"{match.group(1)}={REDACTED}", text)
    text = _EMAIL.sub(lambda match: mask_email(match.group(0)), text)
    text = _LONG_TOKEN.sub(REDACTED, text)
    text = " ".join(text.split())
    if len(text) > MAX_ERROR_LENGTH:
        text = text[: MAX_ERROR_LENGTH - 1] + "…"
    return text

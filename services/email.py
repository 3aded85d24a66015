"""Email addresses: checking what a person typed, and masking addresses for logs and replies."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from services.errors import InvalidEmail

# RFC 5321 limit; anything longer is not an address, whatever else it is.
MAX_EMAIL_LENGTH = 254


def normalize_email(text: str) -> str:
    """Trim, check the syntax and lower-case; raises InvalidEmail with the reason."""
    candidate = text.strip()
    if not candidate or len(candidate) > MAX_EMAIL_LENGTH:
        raise InvalidEmail("empty or too long")
    try:
        checked = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as error:
        raise InvalidEmail(str(error)) from error
    return checked.normalized.lower()


def same_email(left: str, right: str) -> bool:
    return left.strip().lower() == right.strip().lower()


def mask_email(email: str) -> str:
    """``ivan@example.com`` → ``i***@example.com``: enough to recognise, not to harvest."""
    local, at, domain = email.partition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"

"""Typed failures of the services. Handlers turn them into plain words for the person;
messages here are for logs and operators and never contain keys or full emails."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every failure a service reports on purpose."""


class InvalidEmail(ServiceError):
    """The text is not an email address we can look up."""


class LookupRefused(ServiceError):
    """A lookup was not even tried, to protect the school's students and export budget."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooManyAttempts(LookupRefused):
    """This person used up their email attempts for now."""


# --- GetCourse -------------------------------------------------------------------------------


class GetCourseError(ServiceError):
    """A GetCourse lookup could not be completed: the answer is "try later", never "not found"."""


class GetCourseUnavailable(GetCourseError):
    """Network error, timeout or HTTP 5xx."""


class GetCourseBadResponse(GetCourseError):
    """An answer we cannot read: empty, HTML, not JSON, or JSON of an unexpected shape."""


class GetCourseBusy(GetCourseError):
    """Error 905: another export of this school (ours or another integration's) is running."""


class GetCourseRateLimited(GetCourseError):
    """Error 903: the school's 100-requests-per-2-hours export budget is spent."""


class GetCourseBudgetExhausted(GetCourseError):
    """Our own ledger refuses: this bot's share of the export budget is spent for now."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class GetCourseExportTimeout(GetCourseError):
    """The export was still not ready when we stopped waiting."""


class GetCourseNotCoveredYet(GetCourseError):
    """GetCourse cannot look up one email here and the first sync has not read far enough back
    to say: the directory will know once it has."""


class GetCourseApiError(GetCourseError):
    """An error envelope with a code we do not know."""


class GetCourseFilterRefused(GetCourseApiError):
    """GetCourse does not take an export filter we sent: 908 for an ``email`` filter it does not
    know (alone it leaves no filter), 914 for a status it does not document. Not a broken setup:
    the caller answers another way (a window export) or skips the step."""

    def __init__(self, message: str, code: int, filters: tuple[str, ...]) -> None:
        super().__init__(message)
        self.code = code
        self.filters = filters


class GetCourseConfigError(GetCourseError):
    """The school's setup is wrong (key, domain, plan): retrying will not help until it is fixed."""


class GetCourseFieldRejected(GetCourseConfigError):
    """An import that writes additional fields answered ``result.error`` (most likely a field
    the school has not created): retrying will not help until the school creates it."""


class GetCourseUserMismatch(GetCourseError):
    """The import answered for another GetCourse user than the link's: the email now belongs
    to someone else (or GetCourse created a user); the field write is not repeated."""


# --- Salebot ---------------------------------------------------------------------------------


class SalebotError(ServiceError):
    """A Salebot call failed; ``http_status`` is Salebot's answer, when there was one."""

    def __init__(self, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


class SalebotUnavailable(SalebotError):
    """Network error, timeout, HTTP 429 or 5xx."""


class SalebotBadResponse(SalebotError):
    """An answer we cannot read (not JSON, unexpected shape)."""


class SalebotClientNotFound(SalebotError):
    """No Salebot client for this Telegram user (yet): they may not have started the funnel bot."""


class SalebotRejected(SalebotError):
    """Salebot refused the request (bad key, missing scope, invalid variables)."""


class SalebotCallbackUncertain(SalebotError):
    """A ``callback`` that may have landed (timed out or cut off after it was sent, HTTP 5xx):
    callbacks are not idempotent, so it is not sent again."""


# --- Running -----------------------------------------------------------------------------------


class StartupError(ServiceError):
    """The bot cannot start here (database, instance lock, listening port); the message is one
    line that names the setting to look at."""


class DatabaseUnavailable(StartupError):
    """The database file cannot be opened, created or migrated."""


class InstanceLockHeld(StartupError):
    """Another bot process holds this database; the message says which and what to do."""


# --- Mail ------------------------------------------------------------------------------------


class MailError(ServiceError):
    """A letter with a one-time code could not be sent."""


class MailUnavailable(MailError):
    """The mail server could not be reached, timed out or answered a passing (4xx) error."""


class MailRejected(MailError):
    """The mail server refused the letter, the sender, the address or our login (5xx)."""

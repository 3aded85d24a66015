"""Settings from the environment / ``.env``, per the configuration contract in DESIGN.md.

A missing or malformed setting stops start-up with one line naming it (``SettingsError``)."""

from __future__ import annotations

import ipaddress
import re
from datetime import date
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

TOKEN_PATTERN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")
WEBHOOK_SECRET_CHARACTERS = re.compile(r"^[A-Za-z0-9_-]*$")
# Telegram accepts 1 to 256; fewer than 16 could be guessed by whoever finds the webhook URL.
WEBHOOK_SECRET_LENGTH = (16, 256)
ACCOUNT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*$")
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_]{3,64}$")
# Pasted into the GetCourse process's URL, so URL-safe; long enough not to be guessed.
EVENTS_SECRET_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,256}$")
# Settings where an empty value means "off" rather than "use the default".
EMPTY_MEANS_OFF = frozenset({"getcourse_field_telegram_id", "getcourse_field_salebot_id"})
TELEGRAM_WEBHOOK_PORTS = frozenset({443, 80, 88, 8443})
# How a person may prove an email is theirs, in the order offered (OWNERSHIP_PROOF).
PROOF_METHODS = ("contact", "email_code", "operator")
DEFAULT_SMTP_PORTS = {"starttls": 587, "tls": 465, "none": 25}


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line that names it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
    )

    bot_token: SecretStr
    telegram_api_url: str = "https://api.telegram.org"
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    # The public server (webhook, /getcourse/events); WEBHOOK_LISTEN is its older name.
    http_listen: str = Field(
        default="0.0.0.0:8080", validation_alias=AliasChoices("http_listen", "webhook_listen")
    )
    webhook_drop_pending_updates: bool = False
    health_listen: str = "127.0.0.1:8081"
    shutdown_timeout: float = Field(default=8.0, gt=0)
    updates_at_once: int = Field(default=100, ge=1, le=10_000)
    operator_ids: Annotated[frozenset[int], NoDecode]
    operator_chat_id: int | None = None
    operator_notice_interval: float = Field(default=60.0, gt=0)

    getcourse_account: str | None = None
    getcourse_base_url: str | None = None
    getcourse_api_key: SecretStr
    getcourse_export_budget: int = Field(default=60, ge=1, le=100)
    getcourse_poll_first_delay: float = Field(default=10.0, gt=0)
    getcourse_poll_max_interval: float = Field(default=30.0, gt=0)
    getcourse_lookup_timeout: float = Field(default=240.0, gt=0)
    getcourse_tech_api_key: SecretStr | None = None  # "<developerKey>_<schoolKey>"
    getcourse_not_found_ttl: float = Field(default=120.0, ge=0)
    getcourse_coalesce_seconds: float = Field(default=15.0, ge=0)
    getcourse_queued_notice_seconds: float = Field(default=20.0, ge=0)
    getcourse_pace_lookups: bool = True
    getcourse_pace_free_share: float = Field(default=0.5, ge=0, le=1)
    getcourse_queue_patience_minutes: float = Field(default=30.0, gt=0)
    getcourse_sync_window_days: int = Field(default=90, ge=1)
    getcourse_sync_window_users: int = Field(default=50_000, ge=0)
    getcourse_sync_since: date = date(2012, 1, 1)
    getcourse_sync_reserve: int = Field(default=20, ge=0)
    getcourse_full_sync_hours: float = Field(default=24.0, ge=0)
    getcourse_incremental_sync_minutes: float = Field(default=30.0, ge=0)
    getcourse_field_telegram_id: str = "telegram_id"
    getcourse_field_salebot_id: str = "sb_id"
    getcourse_import_budget: int = Field(default=60, ge=1)
    getcourse_events_secret: SecretStr | None = None
    getcourse_events_keep_days: float = Field(default=30.0, gt=0)
    getcourse_events_per_minute: int = Field(default=600, ge=1)

    salebot_api_key: SecretStr
    salebot_base_url: str = "https://chatter.salebot.pro"
    salebot_bot_username: str
    salebot_retry_first_delay: float = Field(default=5.0, gt=0)
    salebot_retry_max_delay: float = Field(default=3600.0, gt=0)
    salebot_missing_client_max_delay: float = Field(default=6 * 3600.0, gt=0)
    salebot_missing_client_days: float = Field(default=14.0, gt=0)
    salebot_keep_variables_on_unlink: bool = False
    salebot_event_message: str = "gc_{event}"
    salebot_linked_message: str = ""

    link_conflict: Literal["refuse", "replace"] = "refuse"
    ownership_proof: Annotated[tuple[str, ...], NoDecode] = PROOF_METHODS
    smtp_host: str | None = None
    smtp_port: int | None = Field(default=None, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str | None = None
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    link_attempts_per_hour: int = Field(default=5, ge=1)
    getcourse_lookups_per_hour: int = Field(default=600, ge=1)

    database_path: Path = Path("data/bot.sqlite3")
    retention_days: int = Field(default=180, ge=1)
    bot_language: Literal["ru", "en"] = "ru"
    school_name: str | None = Field(default=None, max_length=100)
    privacy_policy_url: str | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Empty values are ignored (an empty line in .env means "the default"), except where
        # empty means "off": those are read again with empties kept, below the usual sources.
        assert isinstance(dotenv_settings, DotEnvSettingsSource)
        env_with_empties = EnvSettingsSource(settings_cls, env_ignore_empty=False)
        dotenv_with_empties = DotEnvSettingsSource(
            settings_cls,
            env_file=dotenv_settings.env_file,
            env_file_encoding=dotenv_settings.env_file_encoding,
            env_ignore_empty=False,
        )
        return (
            init_settings,
            env_settings,
            _EmptyMeansOff(settings_cls, env_with_empties),
            dotenv_settings,
            _EmptyMeansOff(settings_cls, dotenv_with_empties),
            file_secret_settings,
        )

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        if not TOKEN_PATTERN.match(value.get_secret_value().strip()):
            raise ValueError("does not look like a bot token (digits, a colon, then the secret)")
        return SecretStr(value.get_secret_value().strip())

    @field_validator("getcourse_api_key", "salebot_api_key")
    @classmethod
    def _key_present(cls, value: SecretStr) -> SecretStr:
        stripped = value.get_secret_value().strip()
        if not stripped or any(char.isspace() for char in stripped):
            raise ValueError("must be the key itself, without spaces")
        return SecretStr(stripped)

    @field_validator("operator_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",") if part.strip()]
            if not all(re.fullmatch(r"\d+", part) for part in parts):
                raise ValueError("must be Telegram user IDs separated by commas")
            return frozenset(int(part) for part in parts)
        if isinstance(value, int):
            return frozenset({value})
        return value

    @field_validator("operator_ids")
    @classmethod
    def _at_least_one(cls, value: frozenset[int]) -> frozenset[int]:
        if not value:
            raise ValueError("needs at least one Telegram user ID")
        return value

    @field_validator("ownership_proof", mode="before")
    @classmethod
    def _split_methods(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        methods = tuple(part.strip().lower() for part in value.split(",") if part.strip())
        if methods == ("off",):
            return ()
        unknown = [method for method in methods if method not in PROOF_METHODS]
        if unknown or not methods:
            raise ValueError(
                "must be off or a comma-separated list of contact, email_code, operator"
            )
        if len(set(methods)) != len(methods):
            raise ValueError("names a method twice")
        return methods

    @field_validator("smtp_from")
    @classmethod
    def _sender(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if "@" not in parseaddr(value)[1]:
            raise ValueError("must be an address such as School <noreply@school.ru>")
        return value.strip()

    @field_validator(
        "telegram_api_url",
        "getcourse_base_url",
        "salebot_base_url",
        "webhook_url",
        "privacy_policy_url",
    )
    @classmethod
    def _safe_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        url = value.strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("must be a full URL such as https://example.com")
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise ValueError("must use https:// (plain http:// only for loopback hosts)")
        if any(char.isspace() or char in "<>\"'" for char in url):
            raise ValueError("must be a URL without spaces, quotes or angle brackets")
        return url

    @field_validator("getcourse_account")
    @classmethod
    def _account_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        account = value.strip().lower().removesuffix(".getcourse.ru")
        if not ACCOUNT_PATTERN.match(account):
            raise ValueError("must be the account name, as in https://NAME.getcourse.ru")
        return account

    @field_validator("salebot_bot_username")
    @classmethod
    def _username(cls, value: str) -> str:
        username = value.strip().removeprefix("@")
        if not USERNAME_PATTERN.match(username):
            raise ValueError("must be the Telegram bot username, such as school_funnel_bot")
        return username

    @field_validator("http_listen", "health_listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        split_host_port(value)
        return value.strip()

    @field_validator("getcourse_field_telegram_id", "getcourse_field_salebot_id")
    @classmethod
    def _field_title(cls, value: str) -> str:
        # GetCourse matches an additional field by its exact title: only outer spaces go.
        return value.strip()

    @field_validator("getcourse_events_secret")
    @classmethod
    def _events_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        if not EVENTS_SECRET_PATTERN.match(value.get_secret_value().strip()):
            raise ValueError("must be 16-256 characters of A-Z a-z 0-9 _ -")
        return SecretStr(value.get_secret_value().strip())

    @model_validator(mode="after")
    def _combinations(self) -> Settings:
        if self.salebot_retry_max_delay < self.salebot_retry_first_delay:
            raise ValueError("SALEBOT_RETRY_MAX_DELAY must not be below SALEBOT_RETRY_FIRST_DELAY")
        if self.salebot_missing_client_max_delay < self.salebot_retry_first_delay:
            raise ValueError(
                "SALEBOT_MISSING_CLIENT_MAX_DELAY must not be below SALEBOT_RETRY_FIRST_DELAY"
            )
        if self.getcourse_sync_reserve >= self.getcourse_export_budget:
            raise ValueError("GETCOURSE_SYNC_RESERVE must be below GETCOURSE_EXPORT_BUDGET")
        if not self.getcourse_base_url and not self.getcourse_account:
            raise ValueError("GETCOURSE_ACCOUNT or GETCOURSE_BASE_URL must be set")
        if self.smtp_host is not None:
            if self.smtp_from is None:
                raise ValueError("SMTP_FROM is required when SMTP_HOST is set")
            if self.smtp_security == "none" and not _is_loopback(self.smtp_host):
                raise ValueError(
                    "SMTP_SECURITY=none is accepted only for a loopback SMTP_HOST "
                    "(use starttls or tls)"
                )
            if (self.smtp_username is None) != (self.smtp_password is None):
                raise ValueError("SMTP_USERNAME and SMTP_PASSWORD are set together or not at all")
        if self.ownership_proof and not self.proof_methods:
            raise ValueError(
                "OWNERSHIP_PROOF: none of its methods can work here "
                "(email_code needs SMTP_HOST and SMTP_FROM, operator needs OPERATOR_CHAT_ID)"
            )
        if self.mode == "webhook":
            if not self.webhook_url:
                raise ValueError("WEBHOOK_URL is required when MODE=webhook")
            url = urlsplit(self.webhook_url)
            port = url.port or 443
            if port not in TELEGRAM_WEBHOOK_PORTS and not _is_loopback(url.hostname or ""):
                raise ValueError(
                    f"WEBHOOK_URL: Telegram posts webhooks only to ports 443, 80, 88 or 8443, "
                    f"not {port}"
                )
            _check_webhook_secret(
                self.webhook_secret.get_secret_value() if self.webhook_secret else ""
            )
        return self

    @property
    def getcourse_url(self) -> str:
        if self.getcourse_base_url:
            return self.getcourse_base_url
        return f"https://{self.getcourse_account}.getcourse.ru"

    @property
    def proof_methods(self) -> tuple[str, ...]:
        """The methods of OWNERSHIP_PROOF this setup can offer, in their order; empty: off."""
        usable = {
            "contact": True,
            "email_code": self.smtp_host is not None,
            "operator": self.operator_chat_id is not None,
        }
        return tuple(method for method in self.ownership_proof if usable[method])

    @property
    def smtp_port_or_default(self) -> int:
        return self.smtp_port or DEFAULT_SMTP_PORTS[self.smtp_security]

    def secrets(self) -> list[str]:
        """Every secret value, for the log redactor."""
        values = [self.bot_token, self.getcourse_api_key, self.salebot_api_key]
        if self.webhook_secret:
            values.append(self.webhook_secret)
        if self.getcourse_tech_api_key:
            values.append(self.getcourse_tech_api_key)
        if self.getcourse_events_secret:
            values.append(self.getcourse_events_secret)
        if self.smtp_password:
            values.append(self.smtp_password)
        return [value.get_secret_value() for value in values]


class _EmptyMeansOff(PydanticBaseSettingsSource):
    """Only the EMPTY_MEANS_OFF settings of another source, empty values included."""

    def __init__(self, settings_cls: type[BaseSettings], source: EnvSettingsSource) -> None:
        super().__init__(settings_cls)
        self._source = source

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._source.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        return {name: value for name, value in self._source().items() if name in EMPTY_MEANS_OFF}


def load_settings(**overrides: Any) -> Settings:
    """Read the environment and ``.env``; raise ``SettingsError`` with one clear line."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise SettingsError(_first_problem(error)) from None


def _first_problem(error: ValidationError) -> str:
    problem = error.errors(include_url=False, include_input=False)[0]
    names = [str(part).upper() for part in problem["loc"] if isinstance(part, str)]
    message = str(problem["msg"]).removeprefix("Value error, ")
    if not names:
        return f"Configuration error: {message}"
    if problem["type"] == "missing":
        return f"Configuration error: {names[0]} is required but not set"
    return f"Configuration error: {names[0]}: {message}"


def _check_webhook_secret(secret: str) -> None:
    shortest, longest = WEBHOOK_SECRET_LENGTH
    if not secret:
        raise ValueError(
            f"WEBHOOK_SECRET is required when MODE=webhook ({shortest}-{longest} characters "
            "of A-Z a-z 0-9 _ -)"
        )
    if not WEBHOOK_SECRET_CHARACTERS.match(secret):
        raise ValueError("WEBHOOK_SECRET may hold only A-Z a-z 0-9 _ - (Telegram's rule)")
    if not shortest <= len(secret) <= longest:
        raise ValueError(
            f"WEBHOOK_SECRET must be {shortest} to {longest} characters long (it has {len(secret)})"
        )


def split_host_port(value: str) -> tuple[str, int]:
    """``"0.0.0.0:8080"`` -> ``("0.0.0.0", 8080)``; ``"[::]:8080"`` -> ``("::", 8080)``."""
    host, _, port = value.strip().rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("must be host:port, such as 0.0.0.0:8080")
    return host.removeprefix("[").removesuffix("]"), int(port)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

"""Settings from the environment / ``.env``, per the configuration contract in DESIGN.md.

A missing or malformed setting stops start-up with one line naming it (``SettingsError``)."""

from __future__ import annotations

import ipaddress
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

TOKEN_PATTERN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")
WEBHOOK_SECRET_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
ACCOUNT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*$")
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_]{3,64}$")


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
    webhook_listen: str = "0.0.0.0:8080"
    webhook_drop_pending_updates: bool = False
    health_listen: str | None = None
    shutdown_timeout: float = Field(default=8.0, gt=0)
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

    salebot_api_key: SecretStr
    salebot_base_url: str = "https://chatter.salebot.pro"
    salebot_bot_username: str
    salebot_retry_first_delay: float = Field(default=5.0, gt=0)
    salebot_retry_max_delay: float = Field(default=3600.0, gt=0)
    salebot_missing_client_max_delay: float = Field(default=6 * 3600.0, gt=0)
    salebot_missing_client_days: float = Field(default=14.0, gt=0)
    salebot_keep_variables_on_unlink: bool = False

    link_conflict: Literal["refuse", "replace"] = "refuse"
    link_attempts_per_hour: int = Field(default=5, ge=1)
    getcourse_lookups_per_hour: int = Field(default=600, ge=1)

    database_path: Path = Path("data/bot.sqlite3")
    bot_language: Literal["ru", "en"] = "ru"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"

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

    @field_validator("telegram_api_url", "getcourse_base_url", "salebot_base_url", "webhook_url")
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

    @field_validator("webhook_listen", "health_listen")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is None:
            return None
        split_host_port(value)
        return value.strip()

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
        if self.mode == "webhook":
            if not self.webhook_url:
                raise ValueError("WEBHOOK_URL is required when MODE=webhook")
            secret = self.webhook_secret.get_secret_value() if self.webhook_secret else ""
            if not WEBHOOK_SECRET_PATTERN.match(secret):
                raise ValueError(
                    "WEBHOOK_SECRET is required when MODE=webhook (1-256 of A-Z a-z 0-9 _ -)"
                )
        return self

    @property
    def getcourse_url(self) -> str:
        if self.getcourse_base_url:
            return self.getcourse_base_url
        return f"https://{self.getcourse_account}.getcourse.ru"

    def secrets(self) -> list[str]:
        """Every secret value, for the log redactor."""
        values = [self.bot_token, self.getcourse_api_key, self.salebot_api_key]
        if self.webhook_secret:
            values.append(self.webhook_secret)
        if self.getcourse_tech_api_key:
            values.append(self.getcourse_tech_api_key)
        return [value.get_secret_value() for value in values]


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

"""Configuration read once at start from ``HOTLINE_*`` environment variables (and an optional .env).

A hotline operator must learn about a bad setting before the bot touches any data, in one line that
names the variable, so `load_settings` turns pydantic's report into a `SettingsError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Language = Literal["uk", "crh", "en", "ru"]
TELEGRAM_API_BASE_URL = "https://api.telegram.org/bot"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/hotline.db"
ENV_PREFIX = "HOTLINE_"


class SettingsError(Exception):
    """A setting is missing or malformed; the message names the variable and is safe to print."""


class Settings(BaseSettings):
    """Every knob of the bot. Each field is documented in README.md and .env.example."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    bot_token: SecretStr | None = None
    api_base_url: str = TELEGRAM_API_BASE_URL
    database_url: str = DEFAULT_DATABASE_URL
    data_key: SecretStr | None = None
    admin_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    default_language: Language = "uk"
    staff_chat_id: int | None = None

    webhook_url: str | None = None
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = Field(default=8443, ge=1, le=65535)
    webhook_secret: SecretStr | None = None

    send_rate_per_second: float = Field(default=30.0, gt=0, le=1000)
    delivery_sweep_seconds: float = Field(default=3.0, gt=0)
    # How long a reply (an answer, a confirmation, an edit) is retried while Telegram answers
    # 429 or 5xx or cannot be reached; 0: not retried.
    reply_retry_seconds: float = Field(default=30.0, ge=0, le=600)
    # How long a message is retried while Telegram cannot be reached (network errors, 5xx);
    # only a definite refusal (blocked, chat not found, bad request) gives up sooner.
    delivery_horizon_hours: float = Field(default=24.0, gt=0, le=24 * 30)
    # A sender's hold on the rows it is sending, renewed while it lives; a row held by a
    # process that died goes out again once its lease has run out.
    delivery_lease_seconds: float = Field(default=60.0, ge=1, le=3600)
    # PostgreSQL: how often a standby asks for the leader lock and the leader checks it still
    # holds it (bot/leadership.py); a standby takes over a few checks after the leader died.
    leader_check_seconds: float = Field(default=1.0, ge=0.1, le=30)
    # Undeliverable messages are gathered this long, then staff get one summary of them.
    dead_summary_seconds: float = Field(default=60.0, ge=0, le=86400)
    # A discreet notification's details, shown by "Show", are deleted after this many minutes.
    discreet_details_minutes: int = Field(default=10, ge=1, le=2880)
    stale_case_days: int = Field(default=30, ge=1)
    need_info_reminder_days: int = Field(default=3, ge=1)
    # Staff (and monitors of a public case) are told of a held person not heard of this long.
    silence_alarm_days: int = Field(default=30, ge=1)
    draft_retention_days: int = Field(default=7, ge=1)
    outbox_retention_days: int = Field(default=30, ge=1)
    audit_retention_days: int = Field(default=730, ge=30)
    messages_per_minute: int = Field(default=30, ge=1)
    # Updates handled at once (different users'; one user's in order). The HTTP connection pool
    # is sized to match (bot/update_processor.py).
    concurrent_updates: int = Field(default=32, ge=1, le=256)
    reports_per_day: int = Field(default=5, ge=1)
    # An urgent alert nobody took within this many minutes is sent again, and to every admin.
    urgent_escalation_minutes: int = Field(default=10, ge=1, le=240)
    # /healthz and /metrics (Prometheus) for operators: off unless a port is set (9464 is the
    # port Prometheus exporters customarily use); loopback unless a host is set.
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    timezone: str = "Europe/Kyiv"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # How to reach a person at the hotline, shown in /start, /help and the acknowledgements;
    # a setting left empty is simply not shown.
    contact_phone: str | None = Field(default=None, max_length=40)
    contact_website: str | None = Field(default=None, max_length=200)
    contact_hours: str | None = Field(default=None, max_length=120)

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",") if part.strip()]
            if not all(part.lstrip("-").isdigit() for part in parts):
                raise ValueError("must be comma-separated numeric Telegram ids, e.g. 12345,67890")
            return frozenset(int(part) for part in parts)
        return value

    @field_validator(
        "contact_phone", "contact_website", "contact_hours", "metrics_port", mode="before"
    )
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("contact_website")
    @classmethod
    def _check_website(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must start with https://")
        return value

    @field_validator("api_base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://, e.g. http://127.0.0.1:8081/bot")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "must be sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db"
            )
        return value

    @field_validator("bot_token")
    @classmethod
    def _check_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        head, _, tail = value.get_secret_value().partition(":")
        if not head.isdigit() or not tail:
            raise ValueError("must look like 123456:ABC... (from @BotFather)")
        return value

    @property
    def sqlite_path(self) -> Path | None:
        """The database file when the embedded default (SQLite) is used, else None."""
        prefix = "sqlite+aiosqlite:///"
        if self.database_url.startswith(prefix):
            return Path(self.database_url[len(prefix) :])
        return None


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning any validation failure into one readable `SettingsError`."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        first = error.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        reason = first["msg"].removeprefix("Value error, ")
        raise SettingsError(f"{ENV_PREFIX}{field.upper()}: {reason}") from None

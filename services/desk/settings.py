"""Desk-only settings (``ADUAN_DESK_*``), next to the shared ``common.settings``.

The desk listens on the shared ``ADUAN_HTTP_HOST`` / ``ADUAN_HTTP_PORT`` (its API, web page
and ops endpoints on one port, like ingest)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class DeskSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ADUAN_DESK_", env_file=None, extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL (postgresql://user@host:port/db); required by the service, "
        "make run starts an embedded server when unset",
    )
    database_password: SecretStr | None = Field(
        default=None,
        description="password for the URL's user; also read from the secrets file",
    )
    pool_size: int = Field(default=10, ge=2, le=100, description="database connections")
    batch_max: int = Field(default=2000, ge=1, description="records per consumed batch")
    page_size: int = Field(default=50, ge=1, le=500, description="default complaints per page")
    session_hours: float = Field(
        default=12.0, gt=0, le=168, description="how long a web-page sign-in lasts"
    )
    secure_cookies: bool = Field(
        default=False,
        description="mark the web page's session cookie Secure (set when served over HTTPS)",
    )
    idempotency_retention_hours: float = Field(
        default=48.0, gt=0, description="how long an Idempotency-Key is remembered"
    )

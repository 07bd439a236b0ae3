"""Notify-only settings (``ADUAN_NOTIFY_*``), next to the shared ``common.settings``.

Transport endpoints are settings (one SMTP relay, one Telegram bot, one WhatsApp sender per
deployment); who is told on which channel is the registry's job. Secrets are named here by
the variable that holds them and read through ``Settings.secret`` (environment, then the
secrets file), never stored in a setting's value."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"


class NotifySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ADUAN_NOTIFY_", env_file=None, extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="PostgreSQL holding the delivery record; unset: an embedded throw-away one",
    )
    desk_url: str = Field(
        default="http://127.0.0.1:8090/desk",
        description="the desk's web page; e-mails link to <desk_url>/complaints/<id>",
    )
    # --- e-mail --------------------------------------------------------------------------
    smtp_host: str = Field(default="127.0.0.1", description="SMTP submission server")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_starttls: bool = Field(
        default=True, description="upgrade with STARTTLS (refuse to send when not offered)"
    )
    smtp_username: str | None = Field(default=None, description="SMTP login; unset: no AUTH")
    smtp_password_env: str = Field(
        default="ADUAN_NOTIFY_SMTP_PASSWORD", pattern=ENV_NAME, description="its variable"
    )
    smtp_from: str = Field(default="aduan@localhost", description="From address of the e-mails")
    smtp_tls_cafile: str | None = Field(
        default=None, description="CA bundle to trust for STARTTLS; the system's store when unset"
    )
    smtp_batch: int = Field(default=50, ge=1, description="e-mails sent per SMTP connection")
    # --- Telegram ------------------------------------------------------------------------
    telegram_base_url: str = Field(default="https://api.telegram.org")
    telegram_token_env: str = Field(
        default="ADUAN_TELEGRAM_BOT_TOKEN", pattern=ENV_NAME, description="its variable"
    )
    telegram_rate_per_s: float = Field(
        default=25.0, gt=0, description="messages per second per bot (Telegram allows ~30)"
    )
    telegram_chat_interval_s: float = Field(
        default=1.0, ge=0, description="min seconds between two messages to one chat (~1/s)"
    )
    # --- WhatsApp Cloud API --------------------------------------------------------------
    whatsapp_base_url: str = Field(default="https://graph.facebook.com")
    whatsapp_api_version: str = Field(default="v21.0", pattern=r"^v\d+\.\d+$")
    whatsapp_phone_number_id: str | None = Field(
        default=None, description="the sender's phone-number id (Cloud API)"
    )
    whatsapp_token_env: str = Field(
        default="ADUAN_WHATSAPP_TOKEN", pattern=ENV_NAME, description="variable of the API token"
    )
    whatsapp_template: str = Field(
        default="aduan_notifikasi", description="approved template for agency notifications"
    )
    whatsapp_template_language: str = Field(default="id")
    # --- citizen acknowledgements -------------------------------------------------------
    graph_base_url: str = Field(
        default="https://graph.facebook.com", description="Graph API (Instagram/Facebook replies)"
    )
    x_base_url: str = Field(default="https://api.x.com", description="X API v2 (replies)")
    # --- delivery ------------------------------------------------------------------------
    http_timeout_s: float = Field(default=10.0, gt=0, description="per HTTP request")
    queue_size: int = Field(
        default=1000, ge=1, description="deliveries held in memory per channel (back-pressure)"
    )
    concurrency: int = Field(default=16, ge=1, description="deliveries in flight per channel")
    attempts: int = Field(
        default=5, ge=1, description="tries in one go (tenacity) before the delivery is parked"
    )
    backoff_initial_s: float = Field(default=0.5, gt=0, description="first retry wait (jittered)")
    backoff_max_s: float = Field(default=30.0, gt=0, description="longest wait between tries")
    park_s: float = Field(
        default=60.0, gt=0, description="a parked delivery is tried again after this (doubling)"
    )
    give_up_after_s: float = Field(
        default=3 * 86400.0, gt=0, description="dead-letter a delivery still failing after this"
    )
    batch_max: int = Field(default=500, ge=1, description="records per consumed batch")
    keep_s: float = Field(
        default=100 * 86400.0,
        gt=0,
        description="finished deliveries are remembered this long (longer than the topics' "
        "90-day retention, so a replay from the start sends nothing twice)",
    )

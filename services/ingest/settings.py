"""Ingest-only settings (``ADUAN_INGEST_*``), next to the shared ``common.settings``."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DAY_S = 24 * 3600.0


class IngestSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ADUAN_INGEST_", env_file=None, extra="ignore")

    max_body_bytes: int = Field(
        default=3 * 1024 * 1024,
        gt=0,
        description="larger bodies get 413 (WhatsApp sends up to 3 MB)",
    )
    dedup_window_s: float = Field(
        default=7 * DAY_S,
        gt=0,
        description="how long a message id is remembered; WhatsApp retries for up to 7 days",
    )
    dedup_catch_up_timeout_s: float = Field(
        default=120.0, gt=0, description="bound on replaying aduan.messages.v1 at start-up"
    )
    generic_replay_window_s: float = Field(
        default=300.0, gt=0, description="generic webhook: refuse timestamps older/newer than this"
    )
    max_inflight_bytes: int = Field(
        default=32 * 1024 * 1024,
        gt=0,
        description=(
            "memory budget of the deliveries in progress, each counted at 4x its body (three "
            "of the largest at once); more wait up to 2x ADUAN_PRODUCE_TIMEOUT_S, then 503"
        ),
    )
    max_entries: int = Field(
        default=1_000,
        gt=0,
        description="items per delivery (Meta batches at most 1,000); more: 413, nothing written",
    )
    max_text_chars: int = Field(
        default=25_000,
        gt=0,
        description="characters of one message's text (X long posts: 25,000); more: dead letter",
    )

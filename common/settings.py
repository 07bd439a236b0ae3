"""Process settings from ``ADUAN_*`` environment variables (and ``KAFKA_BOOTSTRAP_SERVERS``).

Validated at start-up so a typo stops the process with the variable's name instead of a
mysterious failure an hour later."""

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ADUAN_", env_file=None, extra="ignore", populate_by_name=True
    )

    bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "ADUAN_BOOTSTRAP_SERVERS"),
    )
    topic_prefix: str = Field(
        default="", description="prepended to every topic name (tests, shared clusters)"
    )
    topic_partitions: int | None = Field(
        default=None, ge=1, description="override every topic's partition count"
    )
    replication_factor: int = Field(default=1, ge=1)
    consumer_group_prefix: str = "aduan"

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="port for /metrics on processors without HTTP"
    )

    registry_file: Path = Field(
        default=Path("deploy/config/registry.yaml"), description="agencies and accounts (YAML)"
    )
    secrets_file: Path | None = Field(
        default=None, description="optional KEY=VALUE file consulted after the environment"
    )
    pseudonym_key: SecretStr = Field(
        default=SecretStr(""), description="deployment secret for author pseudonyms"
    )
    produce_timeout_s: float = Field(default=5.0, gt=0)
    max_body_bytes: int = Field(default=3 * 1024 * 1024, gt=0)

    session_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="consumer group session timeout; a restarted member rejoins after ~this",
    )
    fetch_max_wait_ms: int = Field(
        default=100,
        ge=1,
        le=1500,
        description="longest a fetch waits for data; Tansu answers only when it expires",
    )
    rebalance_timeout_s: float = Field(
        default=10.0, gt=0, description="faust broker_rebalance_timeout; first join takes ~half"
    )
    demo_rate: float = Field(default=2.0, gt=0, description="demo webhooks per second")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

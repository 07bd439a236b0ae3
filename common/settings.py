"""Process settings from ``ADUAN_*`` environment variables (and ``KAFKA_BOOTSTRAP_SERVERS``).

Validated at start-up so a typo stops the process with the variable's name instead of a
mysterious failure an hour later."""

from functools import lru_cache
from pathlib import Path
from typing import Self

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.connection import KafkaConnection, SaslMechanism, SecurityProtocol
from common.secrets import secret_from_env

DEFAULT_CONFIG_DIR = Path(__file__).resolve().parents[1] / "deploy" / "config"
"""The example deployment configuration of a source checkout (registry, SLA policies),
found from this file rather than from the working directory, so a service started elsewhere
reads the same files. An installed package has no ``deploy/`` folder: there the variables
must be set (the image sets them), and a missing file is a one-line error naming them."""


def existing_file(path: Path) -> Path:
    """For settings that name a file the service cannot start without."""
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    return path


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ADUAN_", env_file=None, extra="ignore", populate_by_name=True
    )

    bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "ADUAN_BOOTSTRAP_SERVERS"),
    )
    kafka_security_protocol: SecurityProtocol = Field(
        default="PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
    )
    kafka_sasl_mechanism: SaslMechanism | None = Field(
        default=None, description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (SASL_* protocols)"
    )
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = Field(
        default=None, description="also read from the secrets file as ADUAN_KAFKA_SASL_PASSWORD"
    )
    kafka_ssl_cafile: Path | None = Field(
        default=None, description="CA bundle (PEM) to trust; the system's store when unset"
    )
    kafka_ssl_certfile: Path | None = Field(default=None, description="client certificate (PEM)")
    kafka_ssl_keyfile: Path | None = Field(default=None, description="client key (PEM)")
    kafka_ssl_check_hostname: bool = True
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
        default=DEFAULT_CONFIG_DIR / "registry.yaml",
        validate_default=True,
        description="agencies and accounts (YAML)",
    )
    secrets_file: Path | None = Field(
        default=None, description="optional KEY=VALUE file consulted after the environment"
    )
    pseudonym_key: SecretStr = Field(
        default=SecretStr(""), description="deployment secret for author pseudonyms"
    )
    produce_timeout_s: float = Field(
        default=5.0, gt=0, description="how long a write waits for Kafka's acknowledgement"
    )
    broker_wait_s: float = Field(
        default=60.0, gt=0, description="how long a starting service waits for the broker"
    )

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

    _registry_exists = field_validator("registry_file")(existing_file)

    @model_validator(mode="after")
    def _usable(self) -> Self:
        """Fail at start-up, naming the variable, rather than at the first connection."""
        if self.secrets_file is not None and not self.secrets_file.is_file():
            raise ValueError(f"ADUAN_SECRETS_FILE={self.secrets_file}: no such file")
        self.kafka  # noqa: B018  # validates the connection settings
        return self

    @property
    def kafka(self) -> KafkaConnection:
        """The connection every Kafka client of this process is built from."""
        password = self.kafka_sasl_password
        if password is None and self.kafka_sasl_mechanism is not None:
            stored = secret_from_env("ADUAN_KAFKA_SASL_PASSWORD", self.secrets_file)
            password = SecretStr(stored) if stored else None
        return KafkaConnection(
            bootstrap_servers=self.bootstrap_servers,
            security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=password,
            ssl_cafile=self.kafka_ssl_cafile,
            ssl_certfile=self.kafka_ssl_certfile,
            ssl_keyfile=self.kafka_ssl_keyfile,
            ssl_check_hostname=self.kafka_ssl_check_hostname,
        )

    def pseudonym_secret(self) -> str:
        """The pseudonym key from ``ADUAN_PSEUDONYM_KEY`` or the secrets file ("" if unset)."""
        return self.pseudonym_key.get_secret_value() or self.secret("ADUAN_PSEUDONYM_KEY") or ""

    def secret(self, name: str) -> str | None:
        """A secret by variable name, from the environment or the secrets file."""
        return secret_from_env(name, self.secrets_file)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

"""Route-only settings (``ADUAN_ROUTE_*``), next to the shared ``common.settings``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.settings import existing_file
from services.route.policy import DEFAULT_SLA_FILE


class RouteSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ADUAN_ROUTE_", env_file=None, extra="ignore")

    sla_file: Path = Field(
        default=DEFAULT_SLA_FILE, validate_default=True, description="SLA policies (YAML)"
    )
    _sla_exists = field_validator("sla_file")(existing_file)
    tick_interval_s: float = Field(
        default=0.25, gt=0, le=1.0, description="how often due stages are looked for"
    )
    tick_batch: int = Field(default=20_000, ge=1, description="max complaints handled per tick")
    tick_resend_s: float = Field(
        default=5.0, gt=0, description="re-send a tick that was not consumed within this time"
    )
    data_dir: Path = Field(
        default=Path(tempfile.gettempdir()) / "aduan-faust",
        description="faust's data directory: the RocksDB table lives here (a persistent "
        "volume per worker in production, so a restart reads only the changelog's tail)",
    )
    store: Literal["rocksdb", "memory"] = Field(
        default="rocksdb",
        description="table store: rocksdb (local, survives restarts) or memory (tests; "
        "every start reads the whole changelog)",
    )
    standby_replicas: int = Field(
        default=1,
        ge=0,
        description="warm copies of each table partition kept by other workers, so a "
        "rebalance hands partitions to a worker that already has them",
    )
    retain_unresolved_days: float = Field(
        default=30.0,
        ge=0,
        description="days a never-resolved complaint is kept after its last escalation "
        "(then dropped and counted in aduan_route_unresolved_dropped_total)",
    )
    rocksdb_block_cache_mib: int = Field(
        default=16, ge=1, description="RocksDB read cache per table partition (MiB)"
    )
    rocksdb_write_buffer_mib: int = Field(
        default=8, ge=1, description="RocksDB write buffer per table partition (MiB)"
    )
    batch_max: int = Field(default=1000, ge=1, description="records per processing batch")
    batch_within_s: float = Field(
        default=0.01, gt=0, description="max wait to fill a batch of ticks (adds to timer lag)"
    )
    config_poll_s: float = Field(
        default=2.0, gt=0, description="how often the registry and SLA files are checked for edits"
    )

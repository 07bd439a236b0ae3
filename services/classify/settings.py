"""Classify-only settings (``ADUAN_CLASSIFY_*``), next to the shared ``common.settings``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.settings import existing_file
from services.classify.config import DEFAULT_CONFIG


class ClassifySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ADUAN_CLASSIFY_", env_file=None, extra="ignore")

    config: Path = Field(
        default=DEFAULT_CONFIG,
        description="taxonomy, lexicon and rules (YAML); re-read when the file changes",
    )
    model: Path | None = Field(
        default=None,
        description="a model from `python -m services.classify.train` (rules only when unset)",
    )

    _config_exists = field_validator("config")(existing_file)

    @field_validator("model")
    @classmethod
    def _model_exists(cls, v: Path | None) -> Path | None:
        return None if v is None else existing_file(v)

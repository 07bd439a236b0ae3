"""Classify-only settings (``ADUAN_CLASSIFY_*``), next to the shared ``common.settings``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.settings import existing_file
from services.classify.config import DEFAULT_CONFIG

if TYPE_CHECKING:  # the model pulls in scikit-learn; settings are read by `--help` too
    from services.classify.intent_model import IntentModel


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

    intent: Literal["learned", "rules"] = Field(
        default="learned",
        description=(
            "who reads kind and urgency: the model learned from the shipped labelled sentences"
            " (and `ADUAN_CLASSIFY_SENTENCES`), or the configuration's rules alone"
        ),
    )
    sentences: str = Field(
        default="",
        description=(
            "a deployment's own labelled messages (CSV: text, kind, urgency), comma-separated"
            " files added to the shipped sentences the kind/urgency model learns from"
        ),
    )

    _config_exists = field_validator("config")(existing_file)

    @field_validator("sentences")
    @classmethod
    def _sentences_exist(cls, v: str) -> str:
        for path in _paths(v):
            existing_file(path)
        return v

    def intent_model(self) -> IntentModel | None:
        """The kind/urgency model these settings ask for (trained once per process)."""
        if self.intent == "rules":
            return None
        from services.classify.intent_model import shipped_intent_model

        return shipped_intent_model(tuple(p.resolve() for p in _paths(self.sentences)))

    @field_validator("model")
    @classmethod
    def _model_exists(cls, v: Path | None) -> Path | None:
        return None if v is None else existing_file(v)


def _paths(value: str) -> list[Path]:
    return [Path(p.strip()) for p in value.split(",") if p.strip()]

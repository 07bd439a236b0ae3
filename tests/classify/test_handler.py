"""The classifier inside the processor's batch handler (pure: no broker needed)."""

from __future__ import annotations

import orjson
from aiokafka import ConsumerRecord

from common import codecs
from common.settings import Settings
from services.classify.classifier import load_classifier
from services.classify.processor import ClassifyHandler

from .helpers import message, registry


def _record(value: bytes, offset: int) -> ConsumerRecord:
    return ConsumerRecord(
        topic="aduan.messages.v1",
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=b"instagram:p1",
        value=value,
        checksum=None,
        serialized_key_size=12,
        serialized_value_size=len(value),
        headers=(),
    )


def test_replayed_message_yields_the_same_record_under_the_same_key() -> None:
    handler = ClassifyHandler(load_classifier(registry()), Settings())
    value = codecs.dumps(
        message(
            "pohon tumbang menimpa pengendara motor di kelurahan darmo, korbannya masih tertindih"
        )
    )
    first = list(handler([_record(value, 1)]))
    replay = list(handler([_record(value, 7)]))
    assert len(first) == len(replay) == 1
    assert first[0].key == replay[0].key == b"instagram:p1"
    assert first[0].value == replay[0].value
    body = orjson.loads(first[0].value)
    assert body["category"] == "trees_parks" and body["urgency"] == "emergency"


def test_bad_record_is_dead_lettered_and_the_batch_goes_on() -> None:
    handler = ClassifyHandler(load_classifier(registry()), Settings())
    good = codecs.dumps(message("lampu pju mati"))
    outputs = list(handler([_record(b'{"not": "a message"}', 1), _record(good, 2)]))
    assert [o.topic.endswith("deadletter.v1") for o in outputs] == [True, False]
    letter = orjson.loads(outputs[0].value)
    assert letter["reason"] == "invalid_message" and letter["source_offset"] == 1
    assert orjson.loads(outputs[1].value)["agency_kind"] == "transportation"

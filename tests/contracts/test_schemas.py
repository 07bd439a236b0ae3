"""The published JSON Schemas: valid 2020-12 documents, open for consumers, closed for
producers, and the consumers in aduan ignore unknown fields as the policy asks."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import jsonschema
import orjson
import pytest
from aiokafka import ConsumerRecord

from common import codecs
from common.settings import Settings
from common.topics import CATALOG, RAW
from schemas import contract
from schemas.classified import ClassifiedMessage
from schemas.commands import Command, CommandType
from schemas.contract import producer_view, value_schema
from schemas.deadletter import DeadLetter
from schemas.generate import JSON_DIR
from schemas.raw import RawDelivery
from services.classify.classifier import load_classifier
from services.classify.processor import ClassifyHandler
from tests.classify.helpers import message as plain_message
from tests.classify.helpers import registry
from tests.route.factories import message

FILES = sorted(JSON_DIR.glob("*.json"))
AT = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_file_is_a_valid_2020_12_schema_with_schema_and_id(path: Any) -> None:
    schema = json.loads(path.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith("/" + path.name)
    jsonschema.Draft202012Validator.check_schema(schema)


def _nodes(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        return [node, *(n for v in node.values() for n in _nodes(v))]
    if isinstance(node, list):
        return [n for v in node for n in _nodes(v)]
    return []


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_published_schemas_never_refuse_unknown_properties(path: Any) -> None:
    """Consumers must accept fields added later within v1: no object is closed."""
    schema = json.loads(path.read_text())
    assert not [n for n in _nodes(schema) if n.get("additionalProperties") is False]


def test_producer_view_closes_what_the_consumer_view_leaves_open() -> None:
    schema = value_schema(next(t for t in CATALOG if t.value_model is ClassifiedMessage))
    assert schema is not None
    value = orjson.loads(codecs.dumps(message("c1", "t1", AT)))
    value["new_field"] = 1
    value["message"]["new_nested"] = "x"
    consumer = jsonschema.Draft202012Validator(schema)
    producer = jsonschema.Draft202012Validator(producer_view(schema))
    assert consumer.is_valid(value)
    errors = sorted(e.message for e in producer.iter_errors(value))
    assert len(errors) == 2 and all("unexpected" in e for e in errors)
    del value["new_field"], value["message"]["new_nested"]
    assert producer.is_valid(value)


def test_raw_contract_is_headers_and_key_not_a_json_value() -> None:
    """Every ``RawDelivery`` field but the key travels as a header (as text); the key is the
    delivery id; the value is not JSON-wrapped, so it has no value schema."""
    assert value_schema(RAW) is None
    header_names = {h.name for h in RAW.headers}
    assert header_names == set(RawDelivery.model_fields) - {"delivery_id"}
    headers = contract.record_headers_schema(RAW)
    check = jsonschema.Draft202012Validator(headers)
    good = {
        "platform": "instagram",
        "received_at": "2026-11-23T02:00:00.123456+00:00",
        "content_type": "application/json",
        "signature_verified": "true",
    }
    assert check.is_valid(good)
    assert not check.is_valid({**good, "signature_verified": True})  # bytes on the wire, text
    key = jsonschema.Draft202012Validator(
        contract.key_schema(RAW), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    assert key.is_valid("9b2f6f0e-8f3c-4c1e-9f7a-2d7e5c1b3a40")
    assert not key.is_valid("d-1")


@pytest.mark.parametrize("spec", CATALOG, ids=lambda s: s.name)
def test_key_schema_names_the_value_field_it_equals(spec: Any) -> None:
    schema = contract.key_schema(spec)
    if spec.key_field is None:
        assert schema["type"] == "null"
    else:
        assert schema[contract.KEY_FIELD] == spec.key_field


def test_models_ignore_unknown_fields_when_reading() -> None:
    """What aduan's consumers decode (classify: messages; route: classified and commands;
    replay: dead letters) tolerates a field added by a newer producer, at any depth."""
    classified = message("c1", "t1", AT)
    value = orjson.loads(codecs.dumps(classified))
    value["added_later"] = {"any": "thing"}
    value["message"]["added_later"] = 1
    assert ClassifiedMessage.model_validate_json(orjson.dumps(value)) == classified
    command = Command(
        command_id="c", type=CommandType.resolve, complaint_id="x", thread_key="t",
        issued_at=AT, actor="op",
    )  # fmt: skip
    value = {**orjson.loads(codecs.dumps(command)), "note": "on it"}
    assert Command.model_validate_json(orjson.dumps(value)) == command
    letter = DeadLetter(stage="route", reason="r", detail="d", source_topic="t", failed_at=AT)
    value = {**orjson.loads(codecs.dumps(letter)), "retry_count": 2}
    assert DeadLetter.model_validate_json(orjson.dumps(value)) == letter


def test_classify_processes_a_message_with_an_unknown_field() -> None:
    """Before this policy classify dead-lettered such a record as ``invalid_message``."""
    handler = ClassifyHandler(load_classifier(registry()), Settings())
    value = orjson.loads(codecs.dumps(plain_message("lampu pju mati")))
    value["added_later"] = "x"
    body = orjson.dumps(value)
    record = ConsumerRecord(
        topic="aduan.messages.v1", partition=0, offset=1, timestamp=0, timestamp_type=0,
        key=b"k", value=body, checksum=None, serialized_key_size=1,
        serialized_value_size=len(body), headers=(),
    )  # fmt: skip
    (output,) = handler([record])
    assert output.topic.endswith("classified.v1")
    assert orjson.loads(output.value)["agency_kind"] == "transportation"

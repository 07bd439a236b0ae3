"""The AsyncAPI document: valid against the official 3.0.0 schema, catalog-driven (a new
topic appears without touching the generator), complete (every producer and consumer, key,
headers, payload, bindings) and usable (its references resolve, its payload schemas accept
real records)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import jsonschema
import orjson
import pytest
import yaml

from common import codecs
from common.topics import CATALOG, COMMANDS, COMPONENTS, MESSAGES, SLA, Component, TopicSpec
from schemas import asyncapi
from schemas.generate import ASYNCAPI_FILE
from schemas.sla import SlaEvent
from tests.route.factories import message

from .asyncapi_spec import Unavailable, official_schema

AT = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def official(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    cache = getattr(request.config, "cache", None)
    where = cache.mkdir("asyncapi-specs") if cache is not None else tmp_path_factory.mktemp("aa")
    try:
        schema = official_schema(where)
    except Unavailable as exc:
        pytest.skip(f"official AsyncAPI schema unavailable: {exc}")
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return yaml.safe_load(ASYNCAPI_FILE.read_text())


def test_document_is_valid_asyncapi_3(official: jsonschema.Draft7Validator, doc: Any) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in official.iter_errors(doc)]
    assert errors == []
    assert doc["asyncapi"] == "3.0.0"


def test_official_schema_refuses_a_broken_document(
    official: jsonschema.Draft7Validator, doc: Any
) -> None:
    """The validation has teeth: a bad Kafka binding and a bad operation action are caught."""
    bad = copy.deepcopy(doc)
    bad["channels"][MESSAGES.name]["bindings"]["kafka"]["partitions"] = 0
    assert not official.is_valid(bad)
    bad = copy.deepcopy(doc)
    next(iter(bad["operations"].values()))["action"] = "publish"  # AsyncAPI 2 wording
    assert not official.is_valid(bad)


NOTIFICATIONS = TopicSpec(
    name="aduan.notifications.v1",
    key="thread_key",
    value_model=SlaEvent,
    partitions=3,
    cleanup_policy="delete",
    retention_ms=None,
    description="A topic added later.",
    key_field="thread_key",
    key_description="`thread_key` of the value",
    producers=("notify",),
    consumers=("subscribers",),
)


def _with_notifications() -> dict[str, Any]:
    components = {**COMPONENTS, "notify": Component("notify", "the notify service")}
    return asyncapi.document((*CATALOG, NOTIFICATIONS), components)


def test_a_new_catalog_topic_appears_with_everything() -> None:
    """Desk and notify will add topics: an entry in the catalog is all it takes."""
    doc = _with_notifications()
    name = NOTIFICATIONS.name
    channel = doc["channels"][name]
    assert channel["address"] == name
    assert channel["bindings"]["kafka"]["partitions"] == 3
    assert channel["bindings"]["kafka"]["topicConfiguration"]["retention.ms"] == -1
    assert {"notify.send." + name, "subscribers.receive." + name} <= set(doc["operations"])
    assert doc["components"]["messages"][name]["payload"] == {
        "$ref": f"#/components/schemas/{name}.value"
    }
    assert _dangling_refs(doc) == []


def test_a_document_with_a_new_topic_is_still_valid(official: jsonschema.Draft7Validator) -> None:
    assert [e.message[:200] for e in official.iter_errors(_with_notifications())] == []


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _dangling_refs(doc: Any) -> list[str]:
    missing = []
    for ref in _refs(doc):
        target = doc
        for part in ref.removeprefix("#/").split("/"):
            if not isinstance(target, dict) or part not in target:
                missing.append(ref)
                break
            target = target[part]
    return missing


def test_every_reference_resolves(doc: Any) -> None:
    assert _dangling_refs(doc) == []


def test_every_topic_producer_and_consumer_is_described(doc: Any) -> None:
    for spec in CATALOG:
        channel = doc["channels"][spec.name]
        assert channel["bindings"]["kafka"]["partitions"] == spec.partitions
        contract = channel["x-aduan-contract"]
        assert contract["producers"] == list(spec.producers)
        assert contract["consumers"] == list(spec.consumers)
        for text in (spec.ordering, spec.delivery, spec.dedup, spec.partitioner):
            assert text and text in channel["description"]
        for producer in spec.producers:
            assert doc["operations"][f"{producer}.send.{spec.name}"]["action"] == "send"
        for consumer in spec.consumers:
            op = doc["operations"][f"{consumer}.receive.{spec.name}"]
            assert op["action"] == "receive" and "groupId" in op["bindings"]["kafka"]
        message = doc["components"]["messages"][spec.name]
        assert {"headers", "payload"} <= set(message) and "key" in message["bindings"]["kafka"]


def test_commands_state_the_partitioner_requirement(doc: Any) -> None:
    description = doc["channels"][COMMANDS.name]["description"]
    assert "murmur2" in description and "Required" in description


def test_consumer_groups_are_stated(doc: Any) -> None:
    classify = doc["operations"][f"classify.receive.{MESSAGES.name}"]["bindings"]["kafka"]
    assert classify["groupId"]["const"] == "aduan-classify"
    outside = doc["operations"][f"subscribers.receive.{SLA.name}"]
    group = outside["bindings"]["kafka"]["groupId"]
    assert jsonschema.Draft7Validator(group).is_valid("notify-email.sla")
    assert not jsonschema.Draft7Validator(group).is_valid("aduan-route")


def _payload_validator(doc: Any, topic: str) -> jsonschema.Draft7Validator:
    """The payload schema as a consumer would use it from the document alone."""
    ref = doc["components"]["messages"][topic]["payload"]
    return jsonschema.Draft7Validator(
        {**doc, **ref}, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )


def test_payload_schemas_in_the_document_accept_real_values(doc: Any) -> None:
    classified = orjson.loads(codecs.dumps(message("c1", "t1", AT)))
    check = _payload_validator(doc, "aduan.classified.v1")
    assert check.is_valid(classified)
    assert check.is_valid({**classified, "added_later": 1})  # open for consumers
    classified["message"]["platform"] = "tiktok"
    assert not check.is_valid(classified)

"""The JSON Schemas of every topic's record: key, headers and value.

Files (``schemas/json/``, written by ``python -m schemas.generate``), per topic ``<t>``:

* ``<t>.json`` the value, for topics whose value is JSON (all but the raw topic, whose value
  is the platform's body, byte for byte);
* ``<t>.key.json`` the key as text (UTF-8), or ``null`` for a topic without keys;
* ``<t>.headers.json`` the headers as ``{name: text}``.

They are the **consumer** view: open content (no ``additionalProperties: false``), because
within ``v1`` fields are only ever added and a consumer must ignore those it does not know
(``docs/consumers.md``, compatibility policy). What *producers* owe is stricter: no field the
schema does not declare. ``producer_view`` derives that closed form; the wire test validates
what aduan's producers really write against it."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

from common.topics import CATALOG, TopicSpec, headers_file, key_file, schema_file
from schemas.headers import headers_schema

DIALECT = "https://json-schema.org/draft/2020-12/schema"
BASE_URI = "https://aduan.example/schemas/"
POLICY = (
    "Compatibility (docs/consumers.md): within v1 fields are only added, never removed, "
    "renamed, retyped or made required; consumers ignore properties they do not know."
)
KEY_FIELD = "x-aduan-key-field"
"""Annotation on a key schema: the value field the key equals (a change is breaking)."""


def value_schema(spec: TopicSpec) -> dict[str, Any] | None:
    """The value's JSON Schema, or None when the value is not JSON (the raw topic)."""
    if spec.value_is_raw_bytes:
        return None
    schema = spec.value_model.model_json_schema(mode="serialization")
    schema["title"] = f"{spec.name}: {schema.get('title', spec.value_model.__name__)}"
    schema["$comment"] = POLICY
    return _document(schema, schema_file(spec))


def key_schema(spec: TopicSpec) -> dict[str, Any]:
    """The key's JSON Schema: the schema of the value field it equals, as text; ``null``
    for a topic whose records carry no key."""
    if spec.key_field is None:
        schema: dict[str, Any] = {"type": "null"}
    else:
        schema = _field_schema(spec.value_model.model_json_schema(mode="serialization"),
                               spec.key_field.split("."))  # fmt: skip
        schema = {k: v for k, v in schema.items() if k not in {"title", "description", "default"}}
        schema[KEY_FIELD] = spec.key_field
    if spec.key_format is not None:
        schema["format"] = spec.key_format
    schema["title"] = f"{spec.name} record key"
    schema["description"] = (
        f"{spec.key_description}. On the wire: its UTF-8 bytes"
        if spec.key_field is not None
        else spec.key_description
    )
    return _document(schema, key_file(spec))


def record_headers_schema(spec: TopicSpec) -> dict[str, Any]:
    return _document(
        headers_schema(spec.all_headers, f"{spec.name} record headers"), headers_file(spec)
    )


def topic_files(spec: TopicSpec) -> dict[str, dict[str, Any]]:
    """File name → JSON Schema, for one topic."""
    out = {key_file(spec): key_schema(spec), headers_file(spec): record_headers_schema(spec)}
    value = value_schema(spec)
    if value is not None:
        out[schema_file(spec)] = value
    return out


def all_files(catalog: tuple[TopicSpec, ...] = CATALOG) -> dict[str, dict[str, Any]]:
    return {name: schema for spec in catalog for name, schema in topic_files(spec).items()}


def producer_view(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The same schema, closed: every object that lists its properties refuses others.

    What a producer may write (only declared fields), as opposed to what a consumer must
    accept (``schema`` itself). Maps (``additionalProperties`` already a schema) stay."""
    closed = copy.deepcopy(dict(schema))
    for node in _subschemas(closed):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
    return closed


def _document(schema: dict[str, Any], file_name: str) -> dict[str, Any]:
    return {"$schema": DIALECT, "$id": BASE_URI + file_name, **schema}


def _field_schema(root: Mapping[str, Any], path: list[str]) -> dict[str, Any]:
    node: Mapping[str, Any] = root
    for part in path:
        node = _deref(node, root)["properties"][part]
    return dict(_deref(node, root))


def _deref(node: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target: Mapping[str, Any] = root["$defs"][ref.removeprefix("#/$defs/")]
        return target
    return node


def _subschemas(node: Any) -> Iterator[dict[str, Any]]:
    """Every dict inside ``node`` (schemas and some keyword values alike; callers look only
    at dicts that carry schema keywords)."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _subschemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from _subschemas(value)

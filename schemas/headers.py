"""Kafka record headers that are part of a topic's contract.

A header value travels as bytes; aduan writes UTF-8 text, so each header is described by a
JSON Schema of that *text* (a boolean is ``"true"``/``"false"``, an instant is RFC 3339).
The raw topic's headers are derived from the ``RawDelivery`` model (one source of truth for
what a raw record carries besides its bytes); the others are declared here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True, slots=True)
class Header:
    """One header a topic's records carry (or may carry, when not ``required``)."""

    name: str
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = False


REPLAYED_FROM = Header(
    name="aduan-replayed-from",
    description="Set by `python -m services.replay` on every record it re-produces: the dead "
    "letter it came from, `deadletter:<partition>:<offset>`. Traceability only.",
    schema={"type": "string", "pattern": "^deadletter:[0-9]+:[0-9]+$"},
)
DEDUP = Header(
    name="dedup",
    description="Ingest's duplicate-detection key for this message (`message_id`, with "
    "`|edit|<hash of the text>` or `|remove` for edits and removals). Written by ingest and by "
    "a re-parsing replay so running ingest instances learn it; absent on records re-produced "
    "byte for byte from a classify dead letter. Ingest's own bookkeeping: do not build on it.",
)

_WIRE_TEXT: dict[str, dict[str, Any]] = {
    "boolean": {"type": "string", "enum": ["true", "false"]},
    "integer": {"type": "string", "pattern": "^-?[0-9]+$"},
    "number": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$"},
}
_NOTES = {
    "signature_verified": "Always `true` today: ingest stores only deliveries whose "
    "signature it verified.",
    "received_at": "When ingest received the delivery (RFC 3339, UTC).",
    "content_type": "The request's media type; the value is the body in this type.",
    "platform": "The webhook path the delivery arrived on.",
}


def headers_from_model(
    model: type[BaseModel], exclude: frozenset[str] = frozenset()
) -> tuple[Header, ...]:
    """One header per field of ``model`` (minus ``exclude``: what travels as the record key),
    named like the field, its value the field's JSON value as text. A field that may be
    None is an optional header."""
    schema = model.model_json_schema(mode="serialization")
    defs = schema.get("$defs", {})
    required = set(schema.get("required", ()))
    out: list[Header] = []
    for name, prop in schema["properties"].items():
        if name in exclude:
            continue
        branches = [_inline(b, defs) for b in prop.get("anyOf", [prop])]
        nullable = any(b.get("type") == "null" for b in branches)
        (text,) = [_as_text(b) for b in branches if b.get("type") != "null"]
        description = _NOTES.get(name) or prop.get("description") or prop.get("title", name)
        out.append(Header(name, description, text, required=name in required and not nullable))
    return tuple(out)


def _inline(node: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return dict(node)
    target = dict(defs[ref.rsplit("/", 1)[-1]])
    target.update({k: v for k, v in node.items() if k != "$ref"})
    return target


def _as_text(node: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON Schema of a value's text form (drops titles: the header has its own)."""
    kept = {k: v for k, v in node.items() if k not in {"title", "description", "default"}}
    wire = _WIRE_TEXT.get(str(kept.get("type")))
    return dict(wire) if wire is not None else kept


def headers_schema(headers: tuple[Header, ...], title: str) -> dict[str, Any]:
    """JSON Schema of a record's headers seen as ``{name: UTF-8 text}``.

    Open (no ``additionalProperties: false``): clients and brokers add headers of their own
    (tracing, for one), and a consumer must ignore those it does not know."""
    return {
        "type": "object",
        "title": title,
        "description": "Kafka record headers as {name: value decoded as UTF-8}; each name "
        "appears at most once. Consumers ignore headers not listed here.",
        "properties": {h.name: {**h.schema, "description": h.description} for h in headers},
        "required": [h.name for h in headers if h.required],
    }

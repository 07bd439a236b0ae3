"""The compatibility checker catches every breaking kind and lets additive changes through;
the current schemas are compatible with the last released snapshot."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from schemas import compat
from schemas.compat import breaking_changes, compare, compare_sets
from schemas.contract import all_files

# Shaped like pydantic's output: $defs, $ref, anyOf with null, enums, a map, a nested model.
BASE: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$defs": {
        "Kind": {"enum": ["warning", "overdue"], "title": "Kind", "type": "string"},
        "Location": {
            "properties": {
                "latitude": {"maximum": 90, "minimum": -90, "type": "number"},
                "name": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
            },
            "required": ["latitude"],
            "type": "object",
        },
    },
    "properties": {
        "event_id": {"description": "dedup key", "type": "string"},
        "kind": {"$ref": "#/$defs/Kind"},
        "at": {"format": "date-time", "type": "string"},
        "count": {"type": "integer"},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        "location": {"anyOf": [{"$ref": "#/$defs/Location"}, {"type": "null"}], "default": None},
        "due": {
            "additionalProperties": {"format": "date-time", "type": "string"},
            "propertyNames": {"$ref": "#/$defs/Kind"},
            "type": "object",
        },
        "tags": {"items": {"type": "string"}, "type": "array"},
    },
    "required": ["event_id", "kind", "at", "count", "due"],
    "title": "Event",
    "type": "object",
}

Edit = Callable[[dict[str, Any]], object]


def edited(edit: Edit) -> dict[str, Any]:
    new = copy.deepcopy(BASE)
    edit(new)
    return new


def props(s: dict[str, Any]) -> dict[str, Any]:
    return s["properties"]


def add_required_field(s: dict[str, Any]) -> None:
    props(s)["agency"] = {"type": "string"}
    s["required"].append("agency")


def edit_annotations(s: dict[str, Any]) -> None:
    s["title"] = "Renamed"
    props(s)["note"]["default"] = "x"


BREAKING: dict[str, tuple[Edit, str, str]] = {
    "removed field": (lambda s: props(s).pop("note"), "field_removed", "note"),
    "renamed field": (
        lambda s: props(s).__setitem__("event_key", props(s).pop("event_id")),
        "field_removed",
        "event_id",
    ),
    "newly required": (lambda s: s["required"].append("note"), "newly_required", "note"),
    "new required field": (add_required_field, "required_field_added", "agency"),
    "no longer required": (lambda s: s["required"].remove("count"), "no_longer_required", "count"),
    "type narrowed (null dropped)": (
        lambda s: props(s).__setitem__("note", {"type": "string"}),
        "type_narrowed",
        "note",
    ),
    "type widened (null added)": (
        lambda s: props(s).__setitem__("count", {"anyOf": [{"type": "integer"}, {"type": "null"}]}),
        "type_widened",
        "count",
    ),
    "type changed": (
        lambda s: props(s).__setitem__("count", {"type": "string"}),
        "type_changed",
        "count",
    ),
    "integer to number": (
        lambda s: props(s).__setitem__("count", {"type": "number"}),
        "type_changed",
        "count",
    ),
    "enum value removed (through $ref, also the map's key names)": (
        lambda s: s["$defs"]["Kind"]["enum"].remove("overdue"),
        "enum_value_removed",
        "kind|due.propertyNames",
    ),
    "enum imposed": (
        lambda s: props(s)["event_id"].__setitem__("enum", ["a"]),
        "enum_added",
        "event_id",
    ),
    "format added": (
        lambda s: props(s)["event_id"].__setitem__("format", "uuid"),
        "constraint_changed",
        "event_id",
    ),
    "format removed": (
        lambda s: props(s)["at"].pop("format"),
        "constraint_changed",
        "at",
    ),
    "bound tightened in a nested model": (
        lambda s: s["$defs"]["Location"]["properties"]["latitude"].__setitem__("maximum", 10),
        "constraint_changed",
        "location.latitude",
    ),
    "nested field removed": (
        lambda s: s["$defs"]["Location"]["properties"].pop("name"),
        "field_removed",
        "location.name",
    ),
    "pattern added": (
        lambda s: props(s)["event_id"].__setitem__("pattern", "^x"),
        "constraint_changed",
        "event_id",
    ),
    "additionalProperties tightened (false)": (
        lambda s: s.__setitem__("additionalProperties", False),
        "additional_properties_tightened",
        "",
    ),
    "additionalProperties tightened (schema)": (
        lambda s: s.__setitem__("additionalProperties", {"type": "string"}),
        "additional_properties_tightened",
        "",
    ),
    "map values retyped": (
        lambda s: props(s)["due"].__setitem__("additionalProperties", {"type": "number"}),
        "type_changed",
        "due.{}",
    ),
    "array items retyped": (
        lambda s: props(s)["tags"].__setitem__("items", {"type": "integer"}),
        "type_changed",
        "tags.items",
    ),
    "key field annotation changed": (
        lambda s: s.__setitem__("x-aduan-key-field", "message_id"),
        "keyword_changed",
        "",
    ),
}


@pytest.mark.parametrize("case", BREAKING, ids=list(BREAKING))
def test_each_breaking_kind_is_caught(case: str) -> None:
    edit, kind, where = BREAKING[case]
    found = breaking_changes(BASE, edited(edit))
    expected = [(kind, path) for path in where.split("|")]
    assert [(c.kind, c.path.rstrip(".")) for c in found] == expected, found


ADDITIVE: dict[str, Edit] = {
    "optional field added": lambda s: props(s).__setitem__(
        "channel", {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}
    ),
    "optional nested field added": lambda s: s["$defs"]["Location"]["properties"].__setitem__(
        "address", {"type": "string"}
    ),
    "enum value added": lambda s: s["$defs"]["Kind"]["enum"].append("escalated"),
    "description edited": lambda s: props(s)["event_id"].__setitem__("description", "new words"),
    "title and default edited": edit_annotations,
    "$ref inlined (same schema)": lambda s: props(s).__setitem__(
        "kind", copy.deepcopy(s["$defs"]["Kind"])
    ),
}


@pytest.mark.parametrize("case", ADDITIVE, ids=list(ADDITIVE))
def test_additive_changes_pass(case: str) -> None:
    new = edited(ADDITIVE[case])
    assert breaking_changes(BASE, new) == []


def test_additive_changes_are_still_reported() -> None:
    new = edited(ADDITIVE["optional field added"])
    new["$defs"]["Kind"]["enum"].append("escalated")
    kinds = sorted((c.kind, c.breaking) for c in compare(BASE, new))
    assert kinds == [
        ("enum_value_added", False),
        ("enum_value_added", False),  # kind, and due's key names
        ("field_added", False),
    ]


def test_opening_a_closed_object_is_additive() -> None:
    """The move this change made to every published schema: from ``additionalProperties:
    false`` to open."""
    closed = {**BASE, "additionalProperties": False}
    assert breaking_changes(closed, BASE) == []
    assert [c.kind for c in breaking_changes(BASE, closed)] == ["additional_properties_tightened"]


def test_identical_schemas_have_no_changes() -> None:
    assert compare(BASE, copy.deepcopy(BASE)) == []


def test_recursive_models_terminate() -> None:
    tree = {
        "$defs": {
            "Node": {
                "properties": {"children": {"items": {"$ref": "#/$defs/Node"}, "type": "array"}},
                "type": "object",
            }
        },
        "$ref": "#/$defs/Node",
    }
    assert compare(tree, copy.deepcopy(tree)) == []


def test_file_sets_removed_schema_breaks_added_does_not() -> None:
    changes = compare_sets({"a.json": BASE, "b.json": BASE}, {"a.json": BASE, "c.json": BASE})
    assert [(c.path, c.kind, c.breaking) for c in changes] == [
        ("b.json", "schema_removed", True),
        ("c.json", "schema_added", False),
    ]


def test_current_schemas_are_compatible_with_the_last_release() -> None:
    """The gate: ``schemas/json`` against the committed snapshot ``schemas/released/v1``."""
    released = compat.load_dir(compat.RELEASED_DIR)
    assert released, "no released snapshot: python -m schemas.compat --release"
    problems = [str(c) for c in compare_sets(released, all_files()) if c.breaking]
    assert problems == [], "breaking change(s) within v1 (docs/consumers.md):\n" + "\n".join(
        problems
    )


def test_the_gate_fails_on_a_real_breaking_edit() -> None:
    """The same comparison, with one field of the real messages schema dropped."""
    released = compat.load_dir(compat.RELEASED_DIR)
    current = copy.deepcopy(all_files())
    current["messages.v1.json"]["properties"].pop("thread_key")
    broken = [c for c in compare_sets(released, current) if c.breaking]
    assert [(c.path, c.kind) for c in broken] == [("messages.v1.json:thread_key", "field_removed")]


def test_command_line_reports_and_refuses(tmp_path: Any, monkeypatch: Any, capsys: Any) -> None:
    released = tmp_path / "released"
    current = tmp_path / "current"
    released.mkdir()
    current.mkdir()
    (released / "e.json").write_text(json.dumps(BASE))
    (current / "e.json").write_text(json.dumps(edited(BREAKING["removed field"][0])))
    monkeypatch.setattr(compat, "RELEASED_DIR", released)
    monkeypatch.setattr(compat, "CURRENT_DIR", current)
    assert compat.main(["--release"]) == 1
    assert "BREAKING field_removed at e.json:note" in capsys.readouterr().out
    assert json.loads((released / "e.json").read_text()) == BASE  # not refreshed
    (current / "e.json").write_text(json.dumps(edited(ADDITIVE["enum value added"])))
    assert compat.main(["--release"]) == 0
    assert json.loads((released / "e.json").read_text())["$defs"]["Kind"]["enum"][-1] == (
        "escalated"
    )

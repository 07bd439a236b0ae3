"""Compatibility of two versions of a topic's JSON Schemas, under aduan's ``v1`` policy.

The policy (``docs/consumers.md``): within a topic version a change may only

* add a property that is not required,
* add a value to an enumeration (consumers handle values they do not know),
* edit annotations (title, description, examples, default, ``$comment``),
* add a topic (new schema files).

Anything else breaks someone: a removed or renamed property, a property newly required or no
longer required, any change of an existing property's type (narrowed: old records no longer
validate; widened: old consumers meet values they cannot read), a removed enumeration value, a
changed constraint (format, pattern, bounds, lengths, const), closed additional properties, a
changed key field, a removed schema. Those need a new topic version (``aduan.<name>.v2``).

``compare`` is pure: two schema documents in, every difference out, each marked breaking or
not. ``python -m schemas.compat`` compares ``schemas/json`` with the last released snapshot
(``schemas/released/v1``); ``--release`` refreshes the snapshot after a release, refusing if
the change is breaking."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
CURRENT_DIR = HERE / "json"
RELEASED_DIR = HERE / "released" / "v1"

Schema = Mapping[str, Any]

ANNOTATIONS = frozenset(
    {"title", "description", "examples", "default", "$comment", "$id", "$schema", "deprecated",
     "readOnly", "writeOnly"}
)  # fmt: skip
CONSTRAINTS = frozenset(
    {"format", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
     "minLength", "maxLength", "multipleOf", "minItems", "maxItems", "uniqueItems",
     "minProperties", "maxProperties", "contentEncoding", "contentMediaType", "const"}
)  # fmt: skip
STRUCTURE = frozenset(
    {"type", "anyOf", "oneOf", "enum", "properties", "required", "additionalProperties",
     "propertyNames", "items", "prefixItems", "$ref", "$defs", "definitions"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Change:
    path: str
    kind: str
    detail: str
    breaking: bool

    def __str__(self) -> str:
        tag = "BREAKING" if self.breaking else "additive"
        return f"{tag} {self.kind} at {self.path or '(root)'}: {self.detail}"


def compare(old: Schema, new: Schema, path: str = "") -> list[Change]:
    """Every difference between two versions of one schema document, classified."""
    out: list[Change] = []
    _node(_Doc(old), _Doc(new), old, new, path, out, set())
    return out


def breaking_changes(old: Schema, new: Schema) -> list[Change]:
    return [c for c in compare(old, new) if c.breaking]


def compare_sets(old: Mapping[str, Schema], new: Mapping[str, Schema]) -> list[Change]:
    """Compare two sets of schema files (file name → document): a removed file is breaking,
    an added one additive."""
    out: list[Change] = []
    for name in sorted(set(old) | set(new)):
        if name not in new:
            out.append(Change(name, "schema_removed", "file no longer generated", True))
        elif name not in old:
            out.append(Change(name, "schema_added", "new file", False))
        else:
            out += compare(old[name], new[name], name + ":")
    return out


def load_dir(directory: Path) -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))}


# --- the walk -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Doc:
    root: Schema

    def deref(self, node: Schema) -> Schema:
        """Follow local ``$ref`` (keywords beside it override the target's)."""
        seen: set[str] = set()
        while isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
            ref = node["$ref"]
            if ref in seen:
                raise ValueError(f"$ref cycle at {ref}")
            seen.add(ref)
            target: Any = self.root
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return node


def _node(
    od: _Doc, nd: _Doc, old: Schema, new: Schema, path: str, out: list[Change],
    active: set[tuple[str, str]],
) -> None:  # fmt: skip
    refs = (str(old.get("$ref")), str(new.get("$ref")))
    if "$ref" in old and "$ref" in new:
        if refs in active:  # a recursive model: this pair is already being compared
            return
        active = active | {refs}
    old, new = od.deref(old), nd.deref(new)
    old_branches, new_branches = _branches(od, old), _branches(nd, new)
    if len(old_branches) == 1 and len(new_branches) == 1:
        _single(od, nd, old_branches[0], new_branches[0], path, out, active)
        return
    unmatched_new = list(new_branches)
    for ob in old_branches:
        match = next((nb for nb in unmatched_new if _kind(nb) == _kind(ob)), None)
        if match is None:
            out.append(Change(path, "type_narrowed", f"{_kind(ob)} no longer allowed", True))
            continue
        unmatched_new.remove(match)
        _single(od, nd, ob, match, path, out, active)
    for nb in unmatched_new:
        out.append(Change(path, "type_widened", f"{_kind(nb)} now allowed", True))


def _branches(doc: _Doc, node: Schema) -> list[Schema]:
    """A schema as alternatives: ``anyOf``/``oneOf`` members and ``type`` lists split up."""
    for word in ("anyOf", "oneOf"):
        if word in node:
            rest = {k: v for k, v in node.items() if k != word}
            return [
                b for member in node[word] for b in _branches(doc, {**rest, **doc.deref(member)})
            ]
    kinds = node.get("type")
    if isinstance(kinds, list):
        return [{**node, "type": k} for k in kinds]
    return [node]


def _kind(node: Schema) -> str:
    if "type" in node:
        return str(node["type"])
    if "enum" in node:
        kinds = {type(v).__name__ for v in node["enum"]}
        return "enum of " + "/".join(sorted(kinds))
    if "const" in node:
        return "const"
    if "properties" in node:
        return "object"
    return "any"


def _single(
    od: _Doc, nd: _Doc, old: Schema, new: Schema, path: str, out: list[Change],
    active: set[tuple[str, str]],
) -> None:  # fmt: skip
    if _kind(old) != _kind(new):
        out.append(Change(path, "type_changed", f"{_kind(old)} -> {_kind(new)}", True))
        return
    _enum(old, new, path, out)
    for word in sorted(CONSTRAINTS):
        if old.get(word) != new.get(word):
            detail = f"{word}: {old.get(word, '(none)')!r} -> {new.get(word, '(none)')!r}"
            out.append(Change(path, "constraint_changed", detail, True))
    _object(od, nd, old, new, path, out, active)
    for word in ("items", "propertyNames"):
        if word in old or word in new:
            _node(od, nd, old.get(word, {}), new.get(word, {}), f"{path}{word}.", out, active)
    for word in sorted((set(old) | set(new)) - ANNOTATIONS - CONSTRAINTS - STRUCTURE):
        if old.get(word) != new.get(word):
            detail = f"{word}: {old.get(word, '(none)')!r} -> {new.get(word, '(none)')!r}"
            out.append(Change(path, "keyword_changed", detail, True))


def _enum(old: Schema, new: Schema, path: str, out: list[Change]) -> None:
    if "enum" not in old and "enum" not in new:
        return
    if "enum" not in new:
        out.append(Change(path, "enum_dropped", "values no longer enumerated", True))
        return
    if "enum" not in old:
        out.append(Change(path, "enum_added", f"now limited to {new['enum']}", True))
        return
    for value in old["enum"]:
        if value not in new["enum"]:
            out.append(Change(path, "enum_value_removed", repr(value), True))
    for value in new["enum"]:
        if value not in old["enum"]:
            out.append(Change(path, "enum_value_added", repr(value), False))


def _object(
    od: _Doc, nd: _Doc, old: Schema, new: Schema, path: str, out: list[Change],
    active: set[tuple[str, str]],
) -> None:  # fmt: skip
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    old_req, new_req = set(old.get("required", ())), set(new.get("required", ()))
    for name in old_props:
        where = f"{path}{name}"
        if name not in new_props:
            out.append(Change(where, "field_removed", "property no longer declared", True))
            continue
        if name in old_req and name not in new_req:
            out.append(Change(where, "no_longer_required", "consumers relied on it", True))
        if name in new_req and name not in old_req:
            out.append(Change(where, "newly_required", "old records lack it", True))
        _node(od, nd, old_props[name], new_props[name], where + ".", out, active)
    for name in new_props:
        if name not in old_props:
            required = name in new_req
            kind = "required_field_added" if required else "field_added"
            detail = "required: old records lack it" if required else "optional"
            out.append(Change(f"{path}{name}", kind, detail, required))
    _additional(od, nd, old, new, path, out, active)


def _additional(
    od: _Doc, nd: _Doc, old: Schema, new: Schema, path: str, out: list[Change],
    active: set[tuple[str, str]],
) -> None:  # fmt: skip
    """``additionalProperties``: absent or true = open. Opening a closed object is how
    additive fields became possible; closing an open one (false, or a schema) breaks."""
    if "additionalProperties" not in old and "additionalProperties" not in new:
        return
    o, n = old.get("additionalProperties", True), new.get("additionalProperties", True)
    o_open, n_open = o is True or o == {}, n is True or n == {}
    if o is False or (o_open and n_open):
        return
    if o_open:
        detail = f"unknown properties were allowed, now {'refused' if n is False else n!r}"
        out.append(Change(path, "additional_properties_tightened", detail, True))
    elif n_open or n is False:
        detail = f"map values {o!r} -> {'anything' if n_open else 'refused'}"
        out.append(Change(path, "additional_properties_changed", detail, True))
    else:
        _node(od, nd, o, n, f"{path}{{}}.", out, active)


# --- command line ---------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m schemas.compat",
        description="Compare schemas/json with the last released snapshot (schemas/released/v1) "
        "under the v1 compatibility policy; exit 1 on a breaking change.",
    )
    parser.add_argument(
        "--release",
        action="store_true",
        help="after a release: copy schemas/json into the snapshot (refused if breaking)",
    )
    args = parser.parse_args(argv)
    changes = compare_sets(load_dir(RELEASED_DIR), load_dir(CURRENT_DIR))
    for change in changes:
        print(change)
    breaking = [c for c in changes if c.breaking]
    if breaking:
        print(f"{len(breaking)} breaking change(s): publish a new topic version instead")
        return 1
    if args.release:
        RELEASED_DIR.mkdir(parents=True, exist_ok=True)
        for p in RELEASED_DIR.glob("*.json"):
            p.unlink()
        for p in CURRENT_DIR.glob("*.json"):
            shutil.copyfile(p, RELEASED_DIR / p.name)
        print(f"snapshot refreshed: {RELEASED_DIR}")
    elif not changes:
        print("no change since the last release")
    return 0


if __name__ == "__main__":
    sys.exit(main())

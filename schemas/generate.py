"""Generate ``schemas/json/<topic>.json`` (JSON Schema) from the pydantic models.

``python -m schemas.generate`` rewrites the files; ``--check`` exits 1 when they drift
(the test suite runs the same comparison)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from common.topics import CATALOG, schema_file

JSON_DIR = Path(__file__).parent / "json"


def rendered() -> dict[str, str]:
    """File name → JSON Schema text for every topic payload model."""
    out: dict[str, str] = {}
    for spec in CATALOG:
        schema = spec.value_model.model_json_schema(mode="serialization")
        schema["$id"] = f"https://aduan.example/schemas/{schema_file(spec)}"
        schema["title"] = f"{spec.name}: {schema.get('title', spec.value_model.__name__)}"
        if spec.value_is_raw_bytes:
            schema["description"] = (
                "Record headers of a raw delivery; the record value is the body as received."
            )
        out[schema_file(spec)] = (
            json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        )
    return out


def main(argv: list[str]) -> int:
    files = rendered()
    if "--check" in argv:
        stale = [
            name
            for name, text in files.items()
            if not (JSON_DIR / name).exists() or (JSON_DIR / name).read_text() != text
        ]
        extra = sorted(p.name for p in JSON_DIR.glob("*.json") if p.name not in files)
        if stale or extra:
            print(f"schemas out of date: {stale + extra}; run python -m schemas.generate")
            return 1
        return 0
    JSON_DIR.mkdir(exist_ok=True)
    for name, text in files.items():
        (JSON_DIR / name).write_text(text)
    for p in JSON_DIR.glob("*.json"):
        if p.name not in files:
            p.unlink()
    print(f"wrote {len(files)} schemas to {JSON_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

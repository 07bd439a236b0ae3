"""Write the contract files: ``schemas/json/*.json`` (JSON Schemas of every topic's key,
headers and value, from the pydantic models and the topic catalog) and
``schemas/asyncapi.yaml`` (the AsyncAPI 3.0 document built from both).

``python -m schemas.generate`` rewrites them; ``--check`` changes nothing and exits 1 when
they drift (the test suite runs the same comparison)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from schemas import asyncapi, contract

JSON_DIR = Path(__file__).parent / "json"
ASYNCAPI_FILE = Path(__file__).parent / "asyncapi.yaml"


def rendered() -> dict[str, str]:
    """File name (in ``JSON_DIR``) → JSON Schema text, for every topic."""
    return {
        name: json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        for name, schema in contract.all_files().items()
    }


def stale_files() -> list[str]:
    """Generated files that differ from (or are missing against) what the code says."""
    files = rendered()
    stale = [
        name
        for name, text in files.items()
        if not (JSON_DIR / name).exists() or (JSON_DIR / name).read_text() != text
    ]
    stale += sorted(p.name for p in JSON_DIR.glob("*.json") if p.name not in files)
    if not ASYNCAPI_FILE.exists() or ASYNCAPI_FILE.read_text() != asyncapi.render_yaml():
        stale.append(ASYNCAPI_FILE.name)
    return stale


def write() -> int:
    files = rendered()
    JSON_DIR.mkdir(exist_ok=True)
    for name, text in files.items():
        (JSON_DIR / name).write_text(text)
    for p in JSON_DIR.glob("*.json"):
        if p.name not in files:
            p.unlink()
    ASYNCAPI_FILE.write_text(asyncapi.render_yaml())
    return len(files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m schemas.generate",
        description="Regenerate schemas/json/*.json and schemas/asyncapi.yaml from the models "
        "and the topic catalog.",
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if the files are stale"
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        if stale:
            print(f"contract files out of date: {stale}; run python -m schemas.generate")
            return 1
        print("contract files up to date")
        return 0
    count = write()
    print(f"wrote {count} JSON Schemas to {JSON_DIR} and {ASYNCAPI_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
